"""What the data jobs ask of a cluster (ftscale.plan.data_jobs): sized from the config by the
measured per-byte figures, flat for the streamed stages (at the one chunk size, common.STREAM_CHUNK),
named where a node cannot hold them."""

import math
from pathlib import Path

import pytest

from ftscale import config as study_config
from ftscale.data import common
from ftscale.plan import data_jobs
from ftscale.plan import summary as grid_summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy() -> dict:
    return study_config.load(ROOT / "config.yaml")


@pytest.fixture(scope="module")
def paper() -> dict:
    return study_config.load(ROOT / "configs" / "paper.yaml")


def with_lines(config: dict, lines: int) -> dict:
    return {**config, "data": {**config["data"], "pretrain_lines": lines}}


def test_held_stages_grow_with_the_corpus_and_the_streamed_one_does_not(toy):
    small, large = [
        {
            rule: data_jobs.data_job(with_lines(toy, n), rule, family="ende")
            for rule in ("pretrain_corpus", "tokenizer", "tokenize_pretrain")
        }
        for n in (24_000, 96_000)
    ]
    assert large["pretrain_corpus"].input_bytes == 4 * small["pretrain_corpus"].input_bytes
    for rule in ("pretrain_corpus", "tokenizer"):  # memory - baseline is linear in the corpus
        extra = [p[rule].host_memory_bytes - data_jobs.BASELINE_BYTES for p in (small, large)]
        assert extra[1] == pytest.approx(4 * extra[0])
    assert large["tokenize_pretrain"].host_memory_bytes == small["tokenize_pretrain"].host_memory_bytes


def test_the_toy_data_jobs_fit_and_ask_at_least_the_minimum_runtime(toy):
    plans = data_jobs.data_plans(toy, list(toy["tasks"]))
    assert {p.rule for p in plans} >= {
        "pretrain_corpus",
        "tokenizer",
        "tokenize_pretrain",
        "task_data",
        "tokenize_task",
    }
    assert all(p.over is None and p.runtime_minutes >= toy["cluster"]["min_runtime_minutes"] for p in plans)
    # the toy's corpus: pretrain_lines x 2 languages (and 2% for validation) at the synthetic source's 150 bytes a line
    lines = toy["data"]["pretrain_lines"]
    assert data_jobs.corpus_bytes(toy, "ende", ("train",)) == lines * 2 * data_jobs.PRETRAIN_LINE_BYTES["synthetic"]
    assert data_jobs.corpus_bytes(toy, "ende") == pytest.approx(1.02 * data_jobs.corpus_bytes(toy, "ende", ("train",)))
    larger_val = toy | {"data": toy["data"] | {"pretrain_val_share": 0.25}}  # data.pretrain_val_share
    assert data_jobs.corpus_bytes(larger_val, "ende") == pytest.approx(
        1.25 * data_jobs.corpus_bytes(toy, "ende", ("train",))
    )


def test_the_paper_data_stages_stream_or_sample_within_a_node(paper):
    """hf pretraining text, its tokens and the task splits' tokens stream; the tokenizer reads its
    sample (data.tokenizer_sample_lines); before, the corpus (4.6 TB) and the tokenizer (2.6 TB) did not fit."""
    node = paper["cluster"]["node_memory_gb"] * 1e9
    for rule in ("pretrain_corpus", "tokenize_pretrain"):
        plan = data_jobs.data_job(paper, rule, family="ende")
        assert plan.host_memory_bytes == data_jobs.stream_peak_bytes() < node and "node_memory_gb" not in (
            plan.over or ""
        )
    corpus = data_jobs.data_job(paper, "pretrain_corpus", family="ende")
    # hf: planned at the local reader's speed (no longer the synthetic generator's, which made it 12,866 min)
    assert corpus.over is None and corpus.runtime_minutes == math.ceil(
        paper["cluster"]["safety_factor"] * corpus.input_bytes / data_jobs.READ_BYTES_PER_SECOND / 60
    )
    tokenizer = data_jobs.data_job(paper, "tokenizer", family="ende")
    sample = paper["data"]["tokenizer_sample_lines"] * data_jobs.DOCUMENT_BYTES
    assert tokenizer.input_bytes == sample and tokenizer.over is None
    for task in paper["tasks"]:
        plan = data_jobs.data_job(paper, "tokenize_task", task=task)
        assert plan.host_memory_bytes == data_jobs.stream_peak_bytes() and plan.over is None, task


def test_the_streamed_stages_memory_follows_the_one_chunk_size(toy, monkeypatch):
    before = data_jobs.data_job(toy, "tokenize_task", task="translation_ende").host_memory_bytes
    monkeypatch.setattr(common, "STREAM_CHUNK", 2 * common.STREAM_CHUNK)
    after = data_jobs.data_job(toy, "tokenize_task", task="translation_ende").host_memory_bytes
    assert after - data_jobs.BASELINE_BYTES == pytest.approx(2 * (before - data_jobs.BASELINE_BYTES))


def test_ftscale_grid_prints_the_data_jobs(toy):
    text = grid_summary.format_summary(grid_summary.summarize(toy))
    section = text.split("data jobs")[1]
    for rule in ("pretrain_corpus", "tokenizer", "tokenize_pretrain", "task_data", "tokenize_task"):
        assert f"\n  {rule} " in section


def test_a_tokenizing_job_asks_for_the_fewest_threads_that_finish_within_the_limit(toy, paper):
    """The paper's pretraining text (1.2 TB a family) takes about 30,000 min on one thread (the
    planner said 24,123 and asked for one): more than the 48 h limit, so its job asks for the threads
    (the rule's threads:) that bring it under it, one fewer would not; the toy's jobs, and every stage
    that is not threaded, ask for one."""
    limit = paper["cluster"]["max_runtime_minutes"]
    plan = data_jobs.data_job(paper, "tokenize_pretrain", family="ende")
    assert 1 < plan.cpus <= paper["cluster"]["data_cpus"] and plan.over is None and plan.runtime_minutes <= limit
    minutes = lambda threads: (  # noqa: E731
        paper["cluster"]["safety_factor"] * plan.input_bytes / data_jobs.stage_speed(plan.rule, threads) / 60
    )
    assert minutes(plan.cpus) <= limit < minutes(plan.cpus - 1)
    assert all(p.cpus == 1 for p in data_jobs.data_plans(toy, list(toy["tasks"])))
    assert all(
        p.cpus == 1 for p in data_jobs.data_plans(paper, list(paper["tasks"])) if p.rule not in data_jobs.THREADED
    )


def test_threads_speed_a_tokenizing_stage_up_to_its_serial_part_and_no_further(paper):
    one = data_jobs.stage_speed("tokenize_pretrain", 1)
    assert data_jobs.stage_speed("tokenize_pretrain", 4) == 4 * one
    assert data_jobs.stage_speed("tokenize_pretrain", 10_000) == data_jobs.SERIAL_BYTES_PER_SECOND
    assert data_jobs.stage_speed("task_data", 8) == data_jobs.stage_speed("task_data", 1)
    capped = {**paper, "cluster": {**paper["cluster"], "data_cpus": 2}}
    plan = data_jobs.data_job(capped, "tokenize_pretrain", family="ende")
    assert plan.cpus == 2 and "max_runtime_minutes" in plan.over  # named, as every job beyond the cluster
