"""`ftscale status` on the tiny study stopped part-way (real Snakemake, a few targets), then with a
failure injected two ways: a job that fails (its base checkpoint damaged: Snakemake logs the error)
and a run killed at a fault point (FTSCALE_FAULT=resume:4: Snakemake's incomplete markers are left).
Also: every generation kept in samples.jsonl, and `ftscale score --samples` re-scoring a run."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from ftscale import cli
from ftscale.evaluate import samples
from ftscale.plan import status
from ftscale.plan import summary as grid_summary
from ftscale.runtime import launch
from tests.workflow.conftest import ROOT, TINY, snakemake
from tests.workflow.test_tiny_study import TINY_CONFIG  # validated: schema defaults filled in

pytestmark = pytest.mark.workflow
RESULTS = "results/tiny"
# Three runs on the m1 16384-token checkpoint (pretraining axis only: no transfer job), one done.
DONE = "translation_ende/m1-16384tok/fmt/df16"
BROKEN = "translation_ende/m1-16384tok/prompt-4/df16"
KILLED = "translation_ende/m1-16384tok/lora-2/df16"
BASE = f"{RESULTS}/pretrain/ende/m1-16384tok"


def ftscale(workdir, *args, fault=None) -> subprocess.CompletedProcess:
    """The ftscale CLI in workdir, in its own process group (a fault kills that group only)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("FTSCALE_FAULT", None)
    if fault:
        env["FTSCALE_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "ftscale.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def part_run(tmp_path_factory):
    """The tiny study with one run finetuned and evaluated: data, a pretraining run, that run."""
    workdir = tmp_path_factory.mktemp("part")
    snakemake(workdir, "--cores", "2", f"{RESULTS}/finetune/{DONE}/seed0/eval.json")
    return workdir


def study_status(workdir) -> status.Status:
    return status.study_status(TINY_CONFIG, workdir)


def test_status_of_a_study_stopped_part_way(part_run):
    # the CLI in a fresh process: its output, and no torch imported on the way
    code = (
        "import sys; from ftscale import cli; rc = cli.main(['status', '--configfile', sys.argv[1]]); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code, str(TINY)],
        capture_output=True,
        text=True,
        cwd=part_run,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert shown.returncode == 0, shown.stderr
    runs = grid_summary.summarize(TINY_CONFIG)["finetune_runs"]
    assert shown.stdout.startswith(
        f"study tiny: {runs} finetuning runs: 1 done, 0 running, 0 failed, {runs - 1} pending"
    )
    assert shown.stdout.rstrip().endswith("no torch") and "last failures" not in shown.stdout

    result = study_status(part_run)
    assert [run for run, state in result.runs.items() if state == "done"] == [(DONE, 0)]
    assert result.counts[("translation_ende", "pretrain", "fmt")] == {
        "done": 1,
        "running": 0,
        "failed": 0,
        "pending": 11,
    }  # 3 Df x 2 budgets x 2 seeds
    assert result.counts[("translation_ende", "pretrain", "lora")]["done"] == 0
    assert result.jobs_benchmarked == {"data": 5, "pretrain": 1, "finetune": 1, "evaluate": 1}
    bench = part_run / RESULTS / "benchmarks" / "finetune" / DONE / "seed0.tsv"
    assert status.benchmark_seconds(bench) > 0
    assert result.hours_spent["finetune"] == pytest.approx(status.benchmark_seconds(bench) / 3600)
    assert result.hours_planned["finetune"] == grid_summary.summarize(TINY_CONFIG)["gpu_hours_per_rule"]["finetune"]
    assert result.device == "CPU" and result.failures == [] and not result.snakemake_running


def test_every_generation_is_kept_and_rescored(part_run, tmp_path):
    run = part_run / RESULTS / "finetune" / DONE / "seed0"
    evaluation = json.loads((run / "eval.json").read_text())
    hypotheses, references, langs = samples.read(run)
    assert len(hypotheses) == TINY_CONFIG["tasks"]["translation_ende"]["test_examples"] == 16
    assert [{"hypothesis": h, "reference": r} for h, r in zip(hypotheses[:5], references[:5])] == evaluation["samples"]
    assert set(langs) == {"de"} and "hypotheses" not in evaluation
    out = tmp_path / "scores.json"
    assert cli.main(["score", "--samples", str(run), "--json", str(out)]) == 0
    rescored = json.loads(out.read_text())
    assert (rescored["bleu"], rescored["chrf"], rescored["lines"]) == (evaluation["bleu"], evaluation["chrf"], 16)
    assert rescored["signature"] == evaluation["bleu_signature"]


def test_a_failed_job_is_shown_with_its_log(part_run, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(part_run, workdir, symlinks=True)
    # the base checkpoint's largest file truncated by a byte (readers check sealed sizes, not hashes:
    # ftscale.runtime.integrity): the finetuning job that reads it fails
    weights = max((workdir / BASE).iterdir(), key=lambda path: path.stat().st_size)
    data = weights.read_bytes()
    stat = weights.stat()
    weights.write_bytes(data[:-1])
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    failed = snakemake(workdir, "--cores", "1", f"{RESULTS}/finetune/{BROKEN}/seed0/eval.json", check=False)
    assert failed.returncode != 0

    result = study_status(workdir)
    assert result.runs[(BROKEN, 0)] == "failed" and result.runs[(DONE, 0)] == "done"
    assert result.counts[("translation_ende", "pretrain", "prompt")]["failed"] == 1
    [failure] = result.failures
    assert failure.rule == "finetune" and failure.why.startswith("error in .snakemake/log/")
    assert failure.log == f"{RESULTS}/logs/finetune/{BROKEN}/seed0.log"
    assert "Damaged output" in (workdir / failure.log).read_text()


def test_a_killed_run_is_failed_and_running_while_snakemake_runs(part_run, tmp_path):
    workdir = tmp_path / "study"
    shutil.copytree(part_run, workdir, symlinks=True)
    killed = ftscale(
        workdir,
        "run",
        "-s",
        str(ROOT / "Snakefile"),
        "--cores",
        "1",
        f"{RESULTS}/finetune/{KILLED}/seed0/checkpoint",
        "--configfile",
        str(TINY),
        fault="resume:4",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    result = study_status(workdir)
    assert result.runs[(KILLED, 0)] == "failed" and result.runs[(DONE, 0)] == "done"
    [failure] = result.failures  # one per job, though the job has two outputs marked
    assert failure.rule == "finetune" and failure.why.startswith("killed")
    assert (workdir / failure.log).is_file() and failure.log.endswith(f"{KILLED}/seed0.log")
    shown = ftscale(workdir, "status", "--configfile", str(TINY))
    assert shown.returncode == 0 and "1 done, 0 running, 1 failed" in shown.stdout and failure.log in shown.stdout

    # while a Snakemake works in the directory (a process named like its job scripts), the
    # unfinished job is running, not failed
    job = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)", ".snakemake/scripts/job.py"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # once it runs (right after exec, /proc shows an empty command line for a moment)
        assert job.stdout.readline() == "up\n"
        assert launch.snakemake_processes(workdir.resolve()) == [job.pid]
        result = study_status(workdir)
    finally:
        job.kill()
        job.wait()
    assert result.snakemake_running and result.runs[(KILLED, 0)] == "running" and result.failures == []
