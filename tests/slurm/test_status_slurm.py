"""`ftscale status` of a study run on SLURM counts its directory's live jobs through the real
`squeue` of the local cluster (tests/slurm/local-cluster.sh), by rule or group and state, and no
job of another directory. The job here is submitted as the Snakemake SLURM executor submits a run's
group job: `--chdir` the study, `--comment rule_<group or rule>`."""

import subprocess
import time

import pytest

from ftscale.plan import status
from tests.slurm.test_slurm import cluster  # noqa: F401 - the fixture: the local cluster, started
from tests.workflow.test_tiny_study import TINY_CONFIG

pytestmark = pytest.mark.slurm


def test_status_counts_the_studys_slurm_jobs(cluster, tmp_path):  # noqa: F811
    study, elsewhere = tmp_path / "study", tmp_path / "elsewhere"
    (study / status.SLURM_LOGS).mkdir(parents=True)
    elsewhere.mkdir()
    assert status.study_status(TINY_CONFIG, study).slurm == {}  # on SLURM, nothing queued yet
    ids = []
    try:
        for directory in (study, elsewhere):
            submitted = subprocess.run(
                [
                    "sbatch",
                    "--parsable",
                    "--chdir",
                    str(directory),
                    "--comment",
                    "rule_run_evaluate_finetune",
                    "--mem=64",
                    "--output=/dev/null",
                    "--wrap",
                    "sleep 300",
                ],
                capture_output=True,
                text=True,
            )
            assert submitted.returncode == 0, submitted.stderr
            ids.append(submitted.stdout.strip().split(";")[0])
        for _ in range(50):  # until squeue lists both (sbatch returns once the job is accepted)
            listed = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
            if len(listed.stdout.split()) == 2:
                break
            time.sleep(0.2)
        counts = status.study_status(TINY_CONFIG, study).slurm
    finally:
        subprocess.run(["scancel", *ids], capture_output=True)
    assert len(counts) == 1 and sum(counts.values()) == 1, counts
    [key] = counts
    assert key in ("run_evaluate_finetune pending", "run_evaluate_finetune running"), counts
    assert status.study_status(TINY_CONFIG, tmp_path / "no-slurm").slurm is None  # not run on SLURM: no squeue
