"""Every bench in bench/ runs in its --quick mode, so that none can rot unseen (figures, not
assertions: nothing here times anything). Each runs as `make bench` runs it, in a fresh interpreter,
with its figures merged into a temporary summary (FTSCALE_BENCH_SUMMARY), which must then hold them.
bench_memory has its own, in-process test (tests/unit/test_bench_memory.py) and runs here too."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftscale.plan import timing

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
HELPERS = {"summary.py", "toy_checks.py"}  # the summary file's writer; a finished study's report (below)
# the figures each quick run must merge (None: it merges nothing in quick mode)
FIGURES = {
    "bench_accumulation.py": "accumulation_overhead",
    "bench_analyze.py": "analyze_paper_seconds",
    "bench_bleurt.py": "bleurt",
    "bench_data_stages.py": "data_stage_rss_per_byte",
    "bench_fitting.py": "fitting_paper_analysis_s",
    "bench_grid.py": "paper_grid_summary_s",
    "bench_memory.py": "memory_planned_over_measured_quick",
    "bench_packed_attention.py": "packed_attention_gb_quick",
    "bench_select.py": "select_wmt19_8_ats",
    "bench_slurm.py": "slurm_cluster_s",
    "bench_speed.py": "decode_speedup_vs_hf_generate_batched",
    "bench_startup.py": None,  # its quick run merges nothing (tests/unit/test_bench_startup.py reads it)
    "bench_synthetic.py": "synthetic_20k_sentences_s",
    "bench_tokenize.py": "tokenize_peak_rss_mb",
    "gpu_check.py": None,
    "run.py": "toy_cold_s",
}
MARKS = {"run.py": [pytest.mark.workflow], "bench_slurm.py": [pytest.mark.slurm]}
ARGS = {"bench_speed.py": ["--clock", "cpu"]}  # the option's only run here (the default, wall, changes nothing)


def test_every_bench_has_a_quick_run_here():
    files = {path.name for path in BENCH.glob("*.py")} - HELPERS
    assert files == set(FIGURES)
    for name in files:
        assert '"--quick"' in (BENCH / name).read_text(), f"{name} has no --quick mode"


def run_quick(name: str, tmp_path: Path, *args: str) -> dict:
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "FTSCALE_BENCH_SUMMARY": str(summary), "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, (
        f"{name} --quick exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
    return json.loads(summary.read_text()) if summary.exists() else {}


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=MARKS.get(name, [])) for name in sorted(FIGURES) if name != "run.py"]
)
def test_quick_mode_runs_and_merges_its_figures(name, tmp_path):
    calibration = tmp_path / "calibration.json"  # gpu_check's: the planner's time model reads it
    figures = run_quick(
        name, tmp_path, *ARGS.get(name, []), *(["--calibration", str(calibration)] if name == "gpu_check.py" else [])
    )
    if FIGURES[name] is None:
        assert figures == {}
    if name == "gpu_check.py":
        measured = timing.load(str(calibration))
        assert measured.device == "cpu" and measured.mfu[0][1] == 1 and measured.mfu[0][2] > 0
    elif FIGURES[name] is not None:
        assert figures.get(FIGURES[name]) is not None, f"{name}: no {FIGURES[name]} in {sorted(figures)}"
    if name == "bench_speed.py":
        assert figures["finetune_clock"] == "cpu"
    if name == "bench_slurm.py":  # its one job went through sbatch (squeue lists it for the run's directory)
        assert figures["slurm_jobs"] == 1


@pytest.mark.workflow
def test_study_bench_runs_and_merges_its_figures(tmp_path):
    """bench/run.py --quick runs the smallest test study twice (cold, no-op) through `ftscale run`."""
    figures = run_quick("run.py", tmp_path, "--keep", str(tmp_path / "study"))
    assert figures["toy_cold_s"] > 0 and figures["toy_noop_s"] > 0
    assert figures["jobs"]["finetune"] > 0 and figures["finetune_job"]["jobs"] == figures["jobs"]["finetune"]
    assert (tmp_path / "study" / "results" / "slurm" / "metrics.csv").exists()  # --keep kept the run


@pytest.mark.workflow
def test_toy_checks_on_a_finished_study(tiny_run):
    """toy_checks.py reads the tiny study's run (the session's `tiny_run`, tests/conftest.py)."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "toy_checks.py"),
            "--config",
            str(ROOT / "tests" / "configs" / "tiny.yaml"),
            "--results",
            str(tiny_run / "results" / "tiny"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "model axis at the largest Df" in done.stdout
    # The largest model at the largest Df, one seed: its 16 test sources' generations, counted apart.
    distinct = re.findall(
        r"BLEU of m2 at Df 64, translation_ende/\w+: [\d.]+; distinct outputs (\d+) of (\d+)", done.stdout
    )
    assert len(distinct) == 3, done.stdout[-3000:]
    assert all(1 <= int(n) <= int(of) == 16 for n, of in distinct), distinct
    # ... and how far its test loss rises with every source swapped for another's, per seed (two)
    assert len(re.findall(r"of 16; source use -?\d+\.\d{3}, -?\d+\.\d{3} nats\n", done.stdout)) == 3


def test_source_use_starts_from_the_evaluated_loss(tiny_run):
    """toy_checks.shifted_loss with no shift is the run's test loss as evaluate computed it, and a
    shift changes it: the source-use figure is the evaluated loss's own rise."""
    sys.path.insert(0, str(BENCH))
    try:
        import toy_checks
    finally:
        sys.path.remove(str(BENCH))
    results = tiny_run / "results" / "tiny"
    config = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    on_axis = toy_checks.on_model_axis(toy_checks.pd.read_csv(results / "metrics.csv"))
    run = on_axis[(on_axis["task"] == "translation_ende") & (on_axis["method"] == "fmt")].iloc[-1]
    spec = config["tasks"][run["task"]]
    test = toy_checks.TaskSplit(results / "data" / "tokens" / run["task"] / "test")
    pairs = [test.example(i, spec["max_source_tokens"], spec["max_target_tokens"]) for i in range(len(test))]
    condition, run_dir = next(
        r for r in toy_checks.seed_runs(results, on_axis, run) if r[1].name == f"seed{run['seed']}"
    )
    base = results / "pretrain" / condition.pretrain_id
    model = toy_checks.finetune.load_finetuned(base, run_dir / "checkpoint", "fmt")
    fmt = toy_checks.base_format(base)
    own = toy_checks.shifted_loss(model, pairs, fmt, 0)
    assert own == pytest.approx(run["test_loss"], abs=1e-5)
    assert toy_checks.shifted_loss(model, pairs, fmt, 1) != own  # the tiny models read their source little: no margin
