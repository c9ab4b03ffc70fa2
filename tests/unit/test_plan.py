"""The grid preview (ftscale.plan.sizing, `ftscale grid`): its job counts are Snakemake's, its parameter
counts are the real models', and its compute follows 6ND / 2ND."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ftscale import cli, outputs
from ftscale import config as study_config
from ftscale.plan import grid, memory, sizing
from ftscale.plan import summary as grid_summary
from ftscale.train.model import count_parameters, new_model

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny() -> dict:
    return study_config.load(TINY)


def test_parameter_counts_are_the_built_models(tiny):
    for name, size in tiny["models"].items():
        model = new_model(size, tiny["data"]["tokenizer_vocab_size"], 256, seed=0)
        assert sizing.model_parameters(tiny, name) == count_parameters(model), name


@pytest.fixture(scope="module")
def tiny_dry_run(tmp_path_factory) -> str:
    """What `snakemake -n` prints for the tiny config: every job with its outputs, then the job stats."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "-s",
            str(ROOT / "Snakefile"),
            "-n",
            "--directory",
            str(tmp_path_factory.mktemp("dry")),
            "--configfile",
            str(TINY),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_job_counts_equal_snakemakes_dry_run(tiny, tiny_dry_run):
    """grid.jobs_per_rule (through grid_summary.summarize) counts what the rules expand to."""
    table = tiny_dry_run.split("Job stats:", 1)[1]
    planned = {
        rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M) if rule not in ("all", "total")
    }
    assert grid_summary.summarize(tiny)["jobs"] == planned == grid.jobs_per_rule(tiny, grid.expand_conditions(tiny))


def _outputs(dry_run: str, rule: str) -> set[str]:
    block = dry_run.split(f"rule {rule}:", 1)[1]
    return {Path(path).name for path in re.search(r"^\s+output: (.*)$", block, re.M).group(1).split(", ")}


def test_the_rules_write_the_tables_and_figures_their_modules_name(tiny_dry_run):
    """rules/analysis.smk takes the names from ftscale.outputs, as ftscale.analysis.tables and ftscale.figures.paper
    do, so the fit and figures jobs promise exactly the files run_analysis and draw_figures write."""
    assert _outputs(tiny_dry_run, "fit") == {f"{name}.{ext}" for name in outputs.TABLES for ext in ("csv", "md")} | {
        "fits.json"
    }
    assert _outputs(tiny_dry_run, "figures") == {f"{name}.{ext}" for name in outputs.FIGURES for ext in ("png", "pdf")}


def test_every_run_path_of_the_dry_run_is_a_condition_of_the_grid(tiny, tiny_dry_run):
    """The rules' `condition` wildcard (grid.CONDITION_PATTERN) matches each condition's id whole:
    every job with that wildcard is one of the grid's conditions, and each condition has its jobs.
    (A pattern that missed an id would leave its run without a rule: the dry run itself fails.)"""
    ids = set(re.findall(r"wildcards: condition=([^,\s]+), seed=\d+", tiny_dry_run))
    assert ids == set(grid.expand_conditions(tiny))


def test_compute_is_6nd_for_training_at_the_clusters_flops(tiny):
    fast = {**tiny, "cluster": {**tiny["cluster"], "flops_per_second": 5e13}}
    summary = grid_summary.summarize(fast)
    # 6ND by hand: two pretraining runs of D = 32,768 tokens, m1 (N = 8,752, as built) and m2 (21,240);
    # m1's 16,384-token base is a checkpoint on its way, costing nothing more
    expected = 6 * (8752 + 21240) * 32768
    assert [(job.model, job.tokens) for job in grid.pretrain_jobs(tiny, grid.expand_conditions(tiny)).values()] == [
        ("m1", 32768),
        ("m2", 32768),
    ]
    assert [sizing.model_parameters(tiny, m) for m in ("m1", "m2")] == [8752, 21240]
    assert summary["flops"]["pretrain"] == expected
    assert summary["gpu_hours_per_stage"]["pretrain"] == pytest.approx(expected / 5e13 / 3600)
    slower = grid_summary.summarize({**tiny, "cluster": {**tiny["cluster"], "flops_per_second": 2.5e13}})
    assert slower["gpu_hours"] == pytest.approx(2 * summary["gpu_hours"])
    assert summary["finetune_runs"] == len(grid.expand_conditions(tiny)) * tiny["finetune"]["seeds"]


def test_finetune_steps_stop_at_the_epoch_cap(tiny):
    condition = next(iter(grid.expand_conditions(tiny).values()))
    capped = {**tiny, "finetune": {**tiny["finetune"], "max_steps": 10**9, "max_epochs": 2}}
    batch = tiny["finetune"]["methods"][condition.method]["batch_size"]
    assert sizing.finetune_steps(capped, condition) == 2 * -(-condition.finetune_examples // batch)


def test_grid_command_writes_grid_json(tmp_path, capsys):
    out = tmp_path / "grid.json"
    assert cli.main(["grid", str(TINY), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert {"pretrain_runs", "finetune_runs", "gpu_hours", "jobs", "flops", "base_models", "gpu_memory_gb"} <= set(
        written
    )
    rules = {
        "pretrain",
        "pretrain_ende_checkpoints",
        "finetune",
        "evaluate",
        "transfer",
        "base_transfer",
    }  # m1: checkpoints
    for key in ("gpus_per_job", "peak_gpu_memory_gb", "max_runtime_minutes", "max_host_memory_gb"):
        assert set(written[key]) == rules, key
    assert written["gpus_per_job"]["finetune"] == 0 and written["base_models"] == 3  # CPU jobs; m1, m2, m1 on less data
    out = capsys.readouterr().out
    assert "jobs per rule" in out and "the largest request of its jobs" in out


def test_grid_command_bad_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("seeds: 2", "seeds: -1"))
    assert cli.main(["grid", str(bad), "--json", str(tmp_path / "g.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ftscale grid:") and "finetune.seeds" in error and "\n" not in error
    assert cli.main(["grid", str(tmp_path / "missing.yaml")]) == 2


# ---- what each job asks of a cluster (the paper's grid on 80 GB GPUs) ----

PAPER = ROOT / "configs" / "paper.yaml"


@pytest.fixture(scope="module")
def paper() -> dict:
    return study_config.load(PAPER)


@pytest.fixture(scope="module")
def paper_plans(paper) -> list:
    return sizing.job_plans(paper)


def test_paper_grid_summary_fits_80gb_gpus(paper):
    summary = grid_summary.summarize(paper)
    assert summary["finetune_runs"] == 3819 and summary["base_models"] == 19
    assert summary["gpu_memory_gb"] == 80 and summary["gpus_per_job"]["pretrain"] > 1
    assert all(0 < gb <= 80 for gb in summary["peak_gpu_memory_gb"].values())
    cluster = paper["cluster"]
    assert all(m <= cluster["max_runtime_minutes"] for m in summary["max_runtime_minutes"].values())
    assert all(gb <= cluster["node_memory_gb"] for gb in summary["max_host_memory_gb"].values())


def test_each_job_gets_the_fewest_gpus_and_the_largest_micro_batch_that_fit(paper, paper_plans):
    cluster = sizing.cluster_options(paper)
    usable = memory.USABLE_GPU_FRACTION * cluster["gpu_memory_gb"] * memory.GB
    for job in paper_plans:
        assert job.memory.total <= usable, job
        assert job.nodes == -(-job.gpus // cluster["gpus_per_node"]) and job.gpus <= cluster["max_gpus_per_job"]
        if job.rule in ("evaluate", "transfer", "base_transfer"):
            assert job.gpus == 1 and job.segment_seconds is None and job.segments == 1
        else:
            assert job.segment_seconds == (job.runtime_minutes - sizing.SEGMENT_EXIT_MARGIN_MINUTES) * 60
    pretrain_16b = next(p for p in paper_plans if p.rule == "pretrain" and p.memory.weights > 0 and p.gpus > 1)
    assert pretrain_16b.memory.fsdp_gathered > 0 and pretrain_16b.memory.autocast_copies < pretrain_16b.memory.weights


def test_a_micro_batch_one_larger_would_not_fit(paper):
    """Maximality, for a 1B pretraining job on one GPU: the next divisor of the batch overflows."""
    job = sizing.pretrain_job({**paper, "cluster": {**paper["cluster"], "max_gpus_per_job": 1}}, "1B", 84_000_000_000)
    share = paper["pretrain"]["batch_size"] // job.gpus
    bigger = min(m for m in range(job.micro_batch_size + 1, share + 1) if share % m == 0)
    work = memory.Workload(memory.Shape.of(paper, "1B"), "pretrain", None, True, 1024, 1024)
    usable = memory.USABLE_GPU_FRACTION * 80 * memory.GB
    assert sizing.step_memory(work, job.micro_batch_size, 1, passes=share // job.micro_batch_size).total <= usable
    assert sizing.step_memory(work, bigger, 1, passes=share // bigger).total > usable


def test_16b_fmt_is_sharded_because_one_gpu_cannot_hold_it(paper):
    work = memory.Workload(memory.Shape.of(paper, "16B"), "fmt", None, True, 515, 257)
    assert memory.device_memory(work, 1, 1, on_gpu=True).total > 80 * memory.GB
    condition = next(c for c in grid.expand_conditions(paper).values() if c.model == "16B" and c.method == "fmt")
    assert sizing.finetune_job(paper, condition).gpus > 1


def test_runtime_request_and_segments_by_hand():
    cluster = {"safety_factor": 2.0, "min_runtime_minutes": 30}
    assert sizing.runtime_request(cluster, 1.0, 600) == (2 * 60 + sizing.JOB_STARTUP_MINUTES, 1)
    assert sizing.runtime_request(cluster, 0.01, 600) == (30, 1)
    # 20 h x 2 = 2400 minutes of work; a segment holds 600 - 10 (start-up) - 10 (exit margin) = 580
    assert sizing.runtime_request(cluster, 20.0, 600) == (600, 5)


def test_a_job_too_long_at_the_gpu_cap_runs_as_segments_at_the_limit(paper):
    capped = {**paper, "cluster": {**paper["cluster"], "max_gpus_per_job": 8, "max_runtime_minutes": 600}}
    job = sizing.pretrain_job(capped, "1B", 84_000_000_000)
    hours = 6 * sizing.model_parameters(paper, "1B") * 84e9 / (8 * paper["cluster"]["flops_per_second"]) / 3600
    assert (job.gpus, job.runtime_minutes) == (8, 600)
    assert job.segments == -(-2.0 * hours * 60 // (600 - 20))


def test_finetune_leaves_room_for_its_evaluation_and_transfer_in_the_run_group(paper):
    limit = paper["cluster"]["max_runtime_minutes"]
    for c in list(grid.expand_conditions(paper).values())[::50]:
        after = [sizing.evaluate_job(paper, c)] + (
            [sizing.transfer_job(paper, c)] if grid.has_transfer(paper, c) else []
        )
        assert sizing.finetune_job(paper, c).runtime_minutes + max(j.runtime_minutes for j in after) <= limit, c.id


def test_cpu_jobs_take_the_whole_batch_and_no_gpu(tiny):
    for job in sizing.job_plans(tiny):
        assert (job.gpus, job.micro_batch_size, job.segment_seconds) == (0, None, None)
        assert job.host_memory_bytes == pytest.approx(memory.HOST_BASELINE_BYTES + job.memory.total, rel=0.5)


def test_a_job_no_gpu_fits_is_one_line_naming_it(paper, tmp_path, capsys):
    small = {**paper, "cluster": {**paper["cluster"], "gpu_memory_gb": 8}}
    with pytest.raises(sizing.PlanError, match=r"^transfer .*cluster.gpu_memory_gb 8"):
        sizing.transfer_job(small, next(c for c in grid.expand_conditions(paper).values() if c.model == "16B"))
    config = tmp_path / "small.yaml"
    config.write_text(PAPER.read_text().replace("gpu_memory_gb: 80", "gpu_memory_gb: 8"))
    assert cli.main(["grid", str(config), "--json", str(tmp_path / "g.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ftscale grid:") and "gpu_memory_gb 8" in error and "\n" not in error


def test_a_run_group_that_leaves_finetune_no_time_is_one_line(tiny):
    """max_runtime_minutes 30 less the evaluation's 11 (10 minutes' start-up and its compute)
    leaves 19, under the 20 of a segment's start-up and exit margin."""
    condition = next(iter(grid.expand_conditions(tiny).values()))
    with pytest.raises(sizing.PlanError, match=r"^finetune .* has 19 minutes left of cluster.max_runtime_minutes 30"):
        sizing.finetune_job({**tiny, "cluster": {**tiny["cluster"], "max_runtime_minutes": 30}}, condition)


def test_the_plans_token_counts_are_the_prompt_formats():
    """An example `<s> source <sep> target </s>` as training encodes it; a prompt `<s> source <sep>` as decoding does."""
    import numpy as np

    from ftscale.data.tokens import OWN_FORMAT
    from ftscale.evaluate.decode import source_prompt
    from ftscale.train.finetune import encode

    source, target = np.arange(10, 15), np.arange(20, 23)
    assert len(encode(source, target, OWN_FORMAT)[0]) == 5 + 3 + sizing.ENCODING_TOKENS
    assert len(source_prompt(source, OWN_FORMAT)) == 5 + sizing.PROMPT_TOKENS
    assert (sizing.ENCODING_TOKENS, sizing.PROMPT_TOKENS) == (3, 2)
