"""Jobs across the two nodes of the live local SLURM cluster (tests/slurm/local-cluster.sh: two
slurmd on this machine, a GPU each in name only): a plain two-node job puts one task on each node.

Needs root and apt, as tests/slurm/ does (same cluster, same skip outside CI, none under CI=true)."""
import subprocess

import pytest

from tests.slurm.test_slurm import cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.multinode


def nodes() -> list[str]:
    return subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, check=True).stdout.split()


def test_a_two_node_job_runs_a_task_on_each_node(cluster, tmp_path):  # noqa: F811
    out = tmp_path / "job.out"
    job = subprocess.run(["sbatch", "--wait", "--nodes=2", "--gpus=2", "--ntasks-per-node=1", "--mem=100", "-t", "5",
                          "-o", str(out), "--wrap", "srun bash -c 'echo $SLURM_PROCID $SLURMD_NODENAME'"],
                         capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stdout + job.stderr + (out.read_text() if out.exists() else "")
    tasks = sorted(line.split() for line in out.read_text().splitlines())
    assert tasks == [["0", nodes()[0]], ["1", nodes()[1]]], out.read_text()
