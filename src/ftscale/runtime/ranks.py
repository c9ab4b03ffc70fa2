"""How a training job becomes one process per GPU.

A job the planner gives one GPU (or a CPU job) runs its function as ever: in the warm worker or in
the script's own process (ftscale.runtime.worker). A job given N > 1 GPUs runs it as N ranks
(ftscale.train.distributed shards the model over them):
- on one node, `torchrun --standalone --nproc-per-node N` inside the step the SLURM jobstep plugin
  made for the job (`srun -n1 --gpus=N --nodes=1`);
- on several nodes, one SLURM task per rank. The jobstep plugin (0.6.1) wraps a job in
  `srun -n1 ... --nodes=M`, which SLURM cannot spread over M nodes; a job with an `mpi` resource
  it runs unwrapped in the batch script instead, and the SLURM plugin then asks sbatch for
  `--ntasks=R` (resource `tasks`; with `tasks_per_gpu: 1`, `--ntasks-per-gpu=1` too). So the
  planner's multi-node jobs carry those resources (slurm_resources), and the job starts its ranks
  with one `srun` of R tasks, each run as `python -m ftscale.runtime.ranks JOB_FILE`, which reads
  its rank from SLURM (rank_environment) and meets the others at its step's first node on a port
  taken from the job id.
The nested srun gets a clean environment (ranks_environment): the outer step's task, CPU, GPU and
TRES variables would become its defaults (the plugin strips them for its own srun, for this reason).

The function's keyword arguments travel to the ranks in a pickle beside the job's log (a filesystem
every node sees). A rank's time segment ending (SegmentEnd) is not a failure: the ranks exit 0 and
rank 0 leaves a note of the step, which the launching script turns back into SegmentEnd (exit 75).
Light: imports no torch (the scripts import this before the job).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ftscale.runtime import worker
from ftscale.runtime.jobs import SegmentEnd

SRC = Path(__file__).resolve().parents[2]
# The rendezvous port: PORT_BASE + job id mod PORT_SPAN, below Linux's ephemeral ports (32768+), so two
# multi-node jobs sharing a first node (different ids) do not collide.
PORT_BASE, PORT_SPAN = 20000, 10000
# What a nested srun keeps of SLURM's variables: the allocation's identity, as the jobstep plugin keeps.
KEEP_SLURM = frozenset(
    {
        "SLURM_JOB_ID",
        "SLURM_JOBID",
        "SLURM_ARRAY_JOB_ID",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_CLUSTER_NAME",
        "SLURM_SUBMIT_DIR",
        "SLURM_SUBMIT_HOST",
    }
)
MPI_LAUNCHER = "srun"  # resources.mpi of a multi-node job: the plugin only checks that it is set
SLURM_KEYS = ("nodes", "cpus_per_task", "mpi", "tasks", "tasks_per_gpu", "slurm_extra")  # slurm_resources


@dataclass(frozen=True)
class Layout:
    """Where a job's ranks run: ranks per node, nodes, CPUs per rank (None: SLURM's) and whether each
    node's ranks have GPUs (one each)."""

    per_node: int = 1
    nodes: int = 1
    cpus_per_rank: int | None = None
    gpus: bool = False

    @property
    def ranks(self) -> int:
        return self.per_node * self.nodes


def slurm_resources(gpus: int, nodes: int, cpus_per_node: int, warning_seconds: int | None = None) -> dict:
    """A training job's SLURM resources from its plan (gpus in all, nodes, CPUs per node, and the margin
    before its end at which it saves and exits); None: unset (Snakemake drops the key). One node: one
    task of all the node's CPUs (torchrun's ranks share it). Several: one task per GPU (resources
    tasks and tasks_per_gpu: sbatch --ntasks=R --ntasks-per-gpu=1), the node's CPUs split among them,
    `mpi` so the jobstep plugin does not wrap the job in `srun -n1` (see the module docstring). Every
    job of several ranks asks for SLURM's warning --signal=USR1@margin, which SLURM sends to every
    process of the job's steps: across nodes, the ranks' own step; on one node, the jobstep's `srun
    -n1` step, which holds the job's Snakemake, its script and torchrun too: they ignore it
    (rules/common.smk, in a job; the others inherit it), the ranks catch it. A one-GPU job is left
    as it was, without: its deadline serves."""
    warning = f"--signal=USR1@{warning_seconds}" if warning_seconds and gpus > 1 else None
    if nodes <= 1:
        return dict(zip(SLURM_KEYS, (1, cpus_per_node, None, None, None, warning)))
    if gpus % nodes:
        raise ValueError(f"gpu={gpus} is not a whole number of GPUs on each of nodes={nodes}")
    per_node = gpus // nodes
    return dict(zip(SLURM_KEYS, (nodes, max(1, cpus_per_node // per_node), MPI_LAUNCHER, gpus, 1, warning)))


def layout(resources) -> Layout:
    """A job's ranks from its rule's resources: several nodes, `tasks` ranks (slurm_resources); one
    node, one rank per GPU (`gpu`); a CPU or one-GPU job, one process. A CPU job may ask for several
    nodes and tasks too (the live test cluster has no GPUs)."""
    get = lambda key: int(resources.get(key, 0) or 0)  # noqa: E731
    gpus, nodes, tasks = get("gpu"), max(1, get("nodes")), get("tasks")
    ranks = tasks if nodes > 1 else gpus
    if ranks <= 1:
        return Layout()
    if ranks % nodes:
        raise ValueError(
            f"resources: {'tasks' if tasks else 'gpu'}={ranks} is not a whole number of ranks on each of nodes={nodes}"
        )
    cpus_per_rank = get("cpus_per_task") or None if nodes > 1 else None  # one node: torchrun's ranks share one task
    return Layout(ranks // nodes, nodes, cpus_per_rank, gpus > 0)


def rendezvous_port(job_id: str) -> int:
    return PORT_BASE + int(job_id) % PORT_SPAN


def ranks_environment(environ: dict, nested_step: bool) -> dict:
    """The ranks' environment: src/ first on PYTHONPATH, so they import this ftscale; for a nested srun
    (nested_step) without the outer step's SLURM_*, SRUN_* and SBATCH_* variables (tasks, nodes,
    CPUs, GPUs, TRES), which srun would take as its own options, keeping the allocation's identity
    (KEEP_SLURM)."""
    env = {
        name: value
        for name, value in environ.items()
        if not nested_step
        or not (name.startswith("SLURM_") and name not in KEEP_SLURM or name.startswith(("SRUN_", "SBATCH_")))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), environ.get("PYTHONPATH")]))
    return env


def command(job_file: Path, where: Layout) -> list[str]:
    """The command line that runs the job's ranks (see the module's docstring). Every srun option is
    explicit: none comes from the environment (ranks_environment)."""
    entry = [sys.executable, "-m", "ftscale.runtime.ranks", str(job_file)]
    if where.nodes == 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={where.per_node}",
            "--standalone",
            *entry[1:],
        ]
    cpus = [f"--cpus-per-task={where.cpus_per_rank}"] if where.cpus_per_rank else []
    gpus = [f"--gpus-per-node={where.per_node}"] if where.gpus else []
    return [
        "srun",
        f"--nodes={where.nodes}",
        f"--ntasks={where.ranks}",
        f"--ntasks-per-node={where.per_node}",
        *cpus,
        *gpus,
        "--kill-on-bad-exit=1",
        *entry,
    ]


def rank_environment(environ: dict) -> dict:
    """What torch.distributed needs (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and the
    ranks per node (LOCAL_WORLD_SIZE, as torchrun sets it: ftscale.train.distributed's HSDP mesh) for a rank
    that srun started, from its SLURM task variables; nothing under torchrun (RANK is set). Rank 0
    runs on the step's first node (srun's block distribution), its name the address, unless the
    environment names one (MASTER_ADDR: a cluster whose node names do not resolve)."""
    if "RANK" in environ or "SLURM_PROCID" not in environ:
        return {}
    first_node = (
        environ.get("MASTER_ADDR")
        or subprocess.run(
            ["scontrol", "show", "hostnames", environ["SLURM_STEP_NODELIST"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]
    )
    nodes = environ.get("SLURM_STEP_NUM_NODES") or environ.get("SLURM_JOB_NUM_NODES")
    return {
        "RANK": environ["SLURM_PROCID"],
        "WORLD_SIZE": environ["SLURM_NTASKS"],
        "LOCAL_RANK": environ["SLURM_LOCALID"],
        "MASTER_ADDR": first_node,
        "MASTER_PORT": str(rendezvous_port(environ["SLURM_JOB_ID"])),
    } | ({"LOCAL_WORLD_SIZE": str(int(environ["SLURM_NTASKS"]) // int(nodes))} if nodes else {})  # HSDP's mesh


def run(target: str, where: Layout = Layout(), log: str | None = None, **kwargs) -> None:
    """Run `module:function(**kwargs)` as where.ranks ranks (one: as ftscale.runtime.worker.run does).
    Raises SegmentEnd when the ranks ended a time segment; exits with a message if they failed."""
    if where.ranks == 1:
        return worker.run(target, log=log, **kwargs)
    with tempfile.TemporaryDirectory(prefix="ranks-", dir=Path(log).parent if log else None) as shared:
        job_file, segment_file = Path(shared) / "job.pkl", Path(shared) / "segment_end"
        job_file.write_bytes(pickle.dumps({"target": target, "kwargs": kwargs, "segment_file": segment_file}))
        argv = command(job_file, where)
        print(f"{where.ranks} ranks: {' '.join(argv)}", flush=True)
        returncode = subprocess.run(argv, env=ranks_environment(dict(os.environ), where.nodes > 1)).returncode
        if segment_file.exists():
            raise SegmentEnd(int(segment_file.read_text()))
    if returncode:
        sys.exit(
            f"the ranks of {target} failed ({argv[0] if where.nodes > 1 else 'torchrun'} exit {returncode}); "
            f"each rank's error is above in the log"
        )


def main(job_file: str) -> None:
    """What each rank runs (python -m ftscale.runtime.ranks JOB_FILE, under torchrun or srun)."""
    os.environ.update(rank_environment(dict(os.environ)))
    job = pickle.loads(Path(job_file).read_bytes())
    try:
        worker.call(job["target"], job["kwargs"])
    except SegmentEnd as end:
        if os.environ.get("RANK") == "0":
            job["segment_file"].write_text(str(end.step))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
