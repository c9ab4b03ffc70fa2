"""What the data jobs ask of a cluster (ftscale.plan.data_jobs): sized from the config by the
measured per-byte figures, flat for the streamed tokenization, named where a node cannot hold them."""

from pathlib import Path

import pytest

from ftscale import config as study_config
from ftscale.plan import data_jobs, sizing

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


def test_a_paper_corpus_held_in_memory_is_named_and_asked_at_the_node_limit(paper):
    cluster = paper["cluster"]
    corpus = data_jobs.data_job(paper, "pretrain_corpus", family="ende")
    assert corpus.over and "node_memory_gb" in corpus.over and "max_runtime_minutes" in corpus.over
    assert corpus.host_memory_mb == cluster["node_memory_gb"] * 1000
    assert corpus.runtime_minutes == cluster["max_runtime_minutes"]
    stream = data_jobs.data_job(paper, "tokenize_pretrain", family="ende")
    assert "node_memory_gb" not in (stream.over or "") and stream.host_memory_bytes == data_jobs.STREAM_PEAK_BYTES


def test_ftscale_grid_prints_the_data_jobs(toy):
    text = sizing.format_summary(sizing.summarize(toy))
    section = text.split("data jobs")[1]
    for rule in ("pretrain_corpus", "tokenizer", "tokenize_pretrain", "task_data", "tokenize_task"):
        assert f"\n  {rule} " in section
