"""The workflow through the live local SLURM cluster (tests/slurm/local-cluster.sh), with the
test profile derived from slurm/: jobs go through sbatch, results equal a local run's, a second
run submits nothing, and a finetune job cancelled mid-training resumes rather than restarts.

Needs root and apt (the cluster is started here); elsewhere these tests skip, saying how to run
them. With CI=true they must run: a cluster that cannot start fails them."""

import json
import os
import subprocess
import time
from pathlib import Path

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


def test_study_runs_through_slurm_like_a_local_run(cluster, tmp_path):
    earlier = set(slurm_jobs())  # a run killed in the same directory (a reused --basetemp) left its jobs
    first = through_slurm(tmp_path / "slurm", CONFIG)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-4000:]
    submitted = "\n".join(
        line for line in slurm_jobs() if line not in earlier and line.endswith(str(tmp_path / "slurm"))
    )
    # Jobs went through sbatch; finetune+evaluate of a run share one allocation (group "run"):
    # 8 runs -> 8 group jobs, not 16. Aggregate, fit and figures are one job each.
    comments = [line.split()[1] for line in submitted.splitlines()]
    assert comments.count("rule_run_evaluate_finetune") == 8, submitted
    assert [comments.count(f"rule_{rule}") for rule in ("aggregate", "fit", "figures")] == [1, 1, 1], submitted
    assert not any(c.startswith(("rule_finetune", "rule_evaluate")) for c in comments), submitted
    assert list((tmp_path / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))

    snakemake(tmp_path / "local", "--cores", "2", config=CONFIG)
    local = pd.read_csv(tmp_path / "local" / RESULTS / "metrics.csv").drop(columns="train_seconds")
    remote = pd.read_csv(tmp_path / "slurm" / RESULTS / "metrics.csv").drop(columns="train_seconds")
    pd.testing.assert_frame_equal(local, remote)

    again = through_slurm(tmp_path / "slurm", CONFIG)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_cancelled_finetune_resumes_from_its_checkpoint(cluster, tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    config["study"] = "preempt"
    config["models"] = {"m1": config["models"]["m1"]}
    config["finetune"]["methods"] = {"fmt": config["finetune"]["methods"]["fmt"]}
    config["tasks"]["translation_ende"]["finetune_examples"] = {"fmt": [64]}
    config["finetune"] |= {"max_steps": 400, "eval_every": 10}
    config_path = write_config(tmp_path / "preempt.yaml", config)
    log = tmp_path / "slurm" / "results/preempt/logs/finetune/translation_ende/m1-32768tok/fmt/df64/seed0.log"

    # the job stops, asleep, right after saving its state at step 100 (ftscale.runtime.faults): cancelled
    # there, not racing a running job
    run = through_slurm(
        tmp_path / "slurm", config_path, "--retries", "1", background=True, env={"FTSCALE_FAULT": "hold:resume:100"}
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

    snakemake(tmp_path / "local", "--cores", "2", config=config_path)
    run_dir = "results/preempt/finetune/translation_ende/m1-32768tok/fmt/df64/seed0"
    for name in ("train.json", "eval.json"):
        local = json.loads((tmp_path / "local" / run_dir / name).read_text())
        remote = json.loads((tmp_path / "slurm" / run_dir / name).read_text())
        for key in ("dev_loss", "steps", "best_step", "test_loss", "bleu", "chrf"):
            assert local.get(key) == remote.get(key), key
