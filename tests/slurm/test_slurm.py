"""The workflow through the live local SLURM cluster (tests/slurm/local-cluster.sh), with the
test profile derived from slurm/: jobs go through sbatch, results equal a local run's, a second
run submits nothing, and a finetune job cancelled mid-training resumes rather than restarts.

Needs root and apt (the cluster is started here); elsewhere these tests skip, saying how to run
them. With CI=true they must run: a cluster that cannot start fails them."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from tests.workflow.conftest import ROOT, SNAKEMAKE, snakemake, write_config

pytestmark = pytest.mark.slurm
CLUSTER = ROOT / "tests" / "slurm" / "local-cluster.sh"
PROFILE = ROOT / "tests" / "slurm" / "profile"
CONFIG = ROOT / "tests" / "configs" / "slurm.yaml"
RESULTS = "results/slurm"


@pytest.fixture(scope="module")
def cluster():
    started = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True)
    if started.returncode == 3 and os.environ.get("CI") != "true":
        pytest.skip(f"{started.stderr.strip()} — run as root: tests/slurm/local-cluster.sh start, then pytest -m slurm")
    assert started.returncode == 0, f"local SLURM did not start:\n{started.stdout}\n{started.stderr}"
    yield


def through_slurm(workdir: Path, config: Path, *extra: str, background: bool = False, env: dict | None = None):
    """Snakemake with the test profile; env: variables added to this process's (sbatch --export=ALL
    passes them on to the jobs)."""
    command = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(PROFILE),
        *extra,
        "--configfile",
        str(config),
    ]
    env = {**os.environ, **(env or {})}
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return subprocess.run(command, capture_output=True, text=True, env=env)


def slurm_jobs() -> list[str]:
    """The controller's jobs, finished ones included (MinJobAge 3600): "id comment workdir" lines."""
    listing = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i %k %Z"], capture_output=True, text=True)
    return listing.stdout.splitlines()


@pytest.fixture(scope="module")
def slurm_study(cluster, tmp_path_factory) -> SimpleNamespace:
    """The test study run once through SLURM (in slurm/) and once locally (in local/). The study test
    checks these runs; the cancelled-finetune test reruns one of its runs on copies, reusing their
    data and pretrained models rather than building its own through the scheduler."""
    workdir = tmp_path_factory.mktemp("slurm_study")
    earlier = set(slurm_jobs())  # a run killed in the same directory (a reused --basetemp) left its jobs
    first = through_slurm(workdir / "slurm", CONFIG)
    submitted = [line for line in slurm_jobs() if line not in earlier and line.endswith(str(workdir / "slurm"))]
    local = snakemake(workdir / "local", "--cores", "2", config=CONFIG, check=False)
    return SimpleNamespace(dir=workdir, first=first, submitted="\n".join(submitted), local=local)


def test_study_runs_through_slurm_like_a_local_run(slurm_study):
    first, submitted, workdir = slurm_study.first, slurm_study.submitted, slurm_study.dir
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-4000:]
    # Jobs went through sbatch; finetune+evaluate of a run share one allocation (group "run"):
    # 8 runs -> 8 group jobs, not 16. Aggregate, fit and figures are one job each.
    comments = [line.split()[1] for line in submitted.splitlines()]
    assert comments.count("rule_run_evaluate_finetune") == 8, submitted
    assert [comments.count(f"rule_{rule}") for rule in ("aggregate", "fit", "figures")] == [1, 1, 1], submitted
    assert not any(c.startswith(("rule_finetune", "rule_evaluate")) for c in comments), submitted
    assert list((workdir / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))

    assert slurm_study.local.returncode == 0, slurm_study.local.stderr[-4000:]
    local = pd.read_csv(workdir / "local" / RESULTS / "metrics.csv").drop(columns="train_seconds")
    remote = pd.read_csv(workdir / "slurm" / RESULTS / "metrics.csv").drop(columns="train_seconds")
    pd.testing.assert_frame_equal(local, remote)

    again = through_slurm(workdir / "slurm", CONFIG)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_cancelled_finetune_resumes_from_its_checkpoint(slurm_study, tmp_path):
    # one run of the study, longer (so that it is still training at step 100): its params changed, it
    # alone reruns, on copies of the study's two directories (their data and base models stay)
    config = yaml.safe_load(CONFIG.read_text())
    config["finetune"] |= {"max_steps": 400, "eval_every": 10}
    config_path = write_config(tmp_path / "preempt.yaml", config)
    for side in ("slurm", "local"):
        shutil.copytree(slurm_study.dir / side, tmp_path / side, symlinks=True)
    run_id = "translation_ende/m1-32768tok/fmt/df64/seed0"
    log = tmp_path / "slurm" / RESULTS / "logs" / "finetune" / f"{run_id}.log"
    run_dir = f"{RESULTS}/finetune/{run_id}"
    target = f"{run_dir}/eval.json"  # the run alone: aggregate, fit and figures are the study test's

    # the job stops, asleep, right after saving its state at step 100 (ftscale.runtime.faults): cancelled
    # there, not racing a running job
    run = through_slurm(
        tmp_path / "slurm",
        config_path,
        "--retries",
        "1",
        target,
        background=True,
        env={"FTSCALE_FAULT": "hold:resume:100"},
    )
    deadline, cancelled = time.monotonic() + 300, None
    while time.monotonic() < deadline and run.poll() is None and cancelled is None:
        if log.exists() and "held at resume:100" in log.read_text():
            jobs = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout
            finetune = [line.split()[0] for line in jobs.splitlines() if "rule_run_" in line]
            if finetune:
                subprocess.run(["scancel", finetune[0]], check=True)
                cancelled = finetune[0]
        time.sleep(0.2)
    output = run.communicate(timeout=600)[0]
    assert cancelled, f"never caught the finetune job mid-training:\n{output[-3000:]}"
    assert run.returncode == 0, output[-4000:]
    text = log.read_text()  # the retry's log
    assert "resumed from" in text, text[-2000:]
    resumed_step = int(text.split("resumed from")[1].split("at step")[1].split()[0])
    assert resumed_step == 100

    snakemake(tmp_path / "local", "--cores", "2", target, config=config_path)
    for name in ("train.json", "eval.json"):
        local = json.loads((tmp_path / "local" / run_dir / name).read_text())
        remote = json.loads((tmp_path / "slurm" / run_dir / name).read_text())
        for key in ("dev_loss", "steps", "best_step", "test_loss", "bleu", "chrf"):
            assert local.get(key) == remote.get(key), key
