"""A run killed with kill -9 at any point finishes when run again through `ftscale run` (what
`make run` calls), with the metrics of an uninterrupted run; a second run in the same directory
is refused with one line.

Each kill happens at a named point (ftscale.runtime.faults: FTSCALE_FAULT), never on a timer: the first
process to reach the point SIGKILLs the whole run, Snakemake included, as a power loss would.
The points leave different things behind: a token array half written (data stage), a training
job's resumable state (training), a complete-looking metrics.csv (aggregate). To spare the CPU,
each starts from a copy of the finished tiny study (the `tiny_run` fixture, the uninterrupted run
the metrics are compared with) and is forced (--forcerun) to redo the job that is killed; the run
again is `ftscale run` with nothing forced. Both ask for metrics.csv only (what is compared): the
fits and figures downstream of it (half a minute a run) are no part of recovering from a kill.
"""

import os
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

from ftscale.runtime import integrity, launch
from tests.workflow.conftest import ROOT, TINY

pytestmark = pytest.mark.faults
RESULTS = "results/tiny"
METRICS = f"{RESULTS}/metrics.csv"  # the target of every run here: see the module's docstring


def ftscale_run(workdir, *args, fault=None) -> subprocess.CompletedProcess:
    """`ftscale run` of the tiny study's metrics.csv, in its own process group (a fault kills that
    group only)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("FTSCALE_FAULT", None)
    if fault:
        env["FTSCALE_FAULT"] = fault
    command = [
        sys.executable,
        "-m",
        "ftscale.cli",
        "run",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        METRICS,
        *args,
        "--configfile",
        str(TINY),
    ]  # the target before --forcerun's list
    return subprocess.run(command, capture_output=True, text=True, env=env, start_new_session=True)


def unsealed_token_dirs(workdir):
    return [d for d in (workdir / RESULTS / "data" / "tokens").glob("*/*") if not (d / integrity.MANIFEST).exists()]


# A LoRA run on the model axis: finetune, evaluate and transfer jobs.
LORA_RUN = "finetune/translation_ende/m2-32768tok/lora-2/df32/seed0"
# point -> (the output whose job the killed run is forced to redo on a copy of the finished tiny
# study, so that it reaches the point redoing only that job and what depends on it), and a check
# of what the kill left behind
POINTS = {
    "tokenize": ("data/tokens/translation_ende/zero_shot_fr", unsealed_token_dirs),
    "resume:4": (
        f"{LORA_RUN}/checkpoint",
        lambda workdir: list((workdir / RESULTS / ".resume" / "finetune").rglob("*.pt")),
    ),
    "aggregate": (
        "metrics.csv",
        lambda workdir: (
            (workdir / RESULTS / "metrics.csv").exists() and not (workdir / RESULTS / "metrics_mean.csv").exists()
        ),
    ),
}


def assert_same_metrics(expected_dir, actual_dir):
    expected = pd.read_csv(expected_dir / RESULTS / "metrics.csv").drop(columns="train_seconds")
    actual = pd.read_csv(actual_dir / RESULTS / "metrics.csv").drop(columns="train_seconds")
    pd.testing.assert_frame_equal(expected, actual)


@pytest.mark.parametrize("point", POINTS)
def test_run_killed_at_a_point_finishes_when_run_again(point, tiny_run, tmp_path):
    redone, left_behind = POINTS[point]
    workdir = tmp_path / "study"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    killed = ftscale_run(workdir, "--forcerun", f"{RESULTS}/{redone}", fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert left_behind(workdir), f"the kill at {point} did not leave what it should"
    assert any((workdir / ".snakemake" / "locks").iterdir()), "the killed run left no Snakemake lock"

    again = ftscale_run(workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "removing the lock a killed run left" in again.stderr
    assert_same_metrics(tiny_run, workdir)
    if point.startswith("resume:"):  # the killed training job went on from its saved state
        log = workdir / RESULTS / "logs" / f"{LORA_RUN}.log"
        assert "resumed from" in log.read_text()
        assert not left_behind(workdir), "the resumable state outlived its finished job"


def test_a_second_run_in_the_same_directory_is_refused(tmp_path):
    with launch.run_lock(tmp_path.resolve()):  # the kernel lock a running `ftscale run` holds
        second = ftscale_run(tmp_path)
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1 and "another run is running in" in second.stderr, second.stderr
    assert not (tmp_path / "results").exists()


def test_a_run_is_refused_while_snakemake_runs_there_outside_ftscale_run(tmp_path):
    # a process named like a Snakemake job script, working in that directory (as a job left running
    # by a Snakemake that alone was killed)
    job = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", ".snakemake/scripts/job.py"], cwd=tmp_path
    )
    try:
        refused = ftscale_run(tmp_path)
    finally:
        job.kill()
        job.wait()
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and f"pids {job.pid}" in refused.stderr, refused.stderr
    assert not (tmp_path / "results").exists()
