"""How a training job becomes one process per GPU.

A job the planner gives one GPU (or a CPU job) runs its function as ever: in the warm worker or in
the script's own process (ftscale.runtime.worker). A job given N > 1 GPUs runs it under torchrun, one rank
per GPU (ftscale.train.distributed shards the model over them): on one node `torchrun --standalone
--nproc-per-node N`; on several nodes `srun` starts one torchrun per node of the SLURM allocation,
which meet at a c10d rendezvous on the allocation's first node. The function's keyword arguments
travel to the ranks in a pickle beside the job's log (a filesystem every node sees).

A rank's time segment ending (SegmentEnd) is not a failure: the ranks exit 0 and rank 0 leaves a
note of the step, which the launching script turns back into SegmentEnd (its exit code 75).
Light: imports no torch (the scripts import this before the job).
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from ftscale.runtime import worker
from ftscale.runtime.jobs import SegmentEnd

RENDEZVOUS_PORT = 29500      # on the allocation's first node; the job's SLURM id keeps jobs apart
SRC = Path(__file__).resolve().parents[2]


def ranks_of(resources) -> tuple[int, int]:
    """(ranks per node, nodes) for a job from its rule's resources: the planner's `gpu` (GPUs in all)
    and `nodes`; a CPU job (gpu 0) or a one-GPU job is one process."""
    gpus, nodes = int(resources.get("gpu", 0) or 0), int(resources.get("nodes", 1) or 1)
    if gpus <= 1:
        return 1, 1
    if gpus % nodes:
        raise ValueError(f"resources: gpu={gpus} is not a whole number of GPUs on each of nodes={nodes}")
    return gpus // nodes, nodes


def command(job_file: Path, per_node: int, nodes: int = 1, first_node: str | None = None,
            job_id: str | None = None) -> list[str]:
    """The command line that runs the job's ranks (see the module's docstring)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={per_node}"]
    entry = ["-m", "ftscale.runtime.ranks", str(job_file)]
    if nodes == 1:
        return [*torchrun, "--standalone", *entry]
    # --overlap: the job itself runs in a step (the SLURM executor's `srun -n1`) holding the first node
    return ["srun", "--overlap", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *torchrun,
            f"--nnodes={nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={first_node}:{RENDEZVOUS_PORT}",
            f"--rdzv-id={job_id}", *entry]


def allocation_first_node() -> str:
    """The first host of this SLURM allocation (the rendezvous)."""
    hosts = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                           capture_output=True, text=True, check=True).stdout.split()
    return hosts[0]


def run(target: str, per_node: int = 1, nodes: int = 1, log: str | None = None, **kwargs) -> None:
    """Run `module:function(**kwargs)` as per_node x nodes ranks (one: as ftscale.runtime.worker.run does).
    Raises SegmentEnd when the ranks ended a time segment; exits with a message if they failed."""
    if per_node * nodes == 1:
        return worker.run(target, log=log, **kwargs)
    with tempfile.TemporaryDirectory(prefix="ranks-", dir=Path(log).parent if log else None) as shared:
        job_file, segment_file = Path(shared) / "job.pkl", Path(shared) / "segment_end"
        job_file.write_bytes(pickle.dumps({"target": target, "kwargs": kwargs, "segment_file": segment_file}))
        multi_node = nodes > 1
        argv = command(job_file, per_node, nodes, allocation_first_node() if multi_node else None,
                       os.environ.get("SLURM_JOB_ID") if multi_node else None)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
        print(f"{per_node * nodes} ranks: {' '.join(argv)}", flush=True)
        returncode = subprocess.run(argv, env=env).returncode
        if segment_file.exists():
            raise SegmentEnd(int(segment_file.read_text()))
    if returncode:
        sys.exit(f"the ranks of {target} failed (torchrun exit {returncode}); each rank's error is above in the log")


def main(job_file: str) -> None:
    """What each rank runs (python -m ftscale.runtime.ranks JOB_FILE under torchrun)."""
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
