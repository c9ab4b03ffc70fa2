"""What every rule's script does first: send all output to the rule's log; a job SLURM gave GPUs stops
with one line where torch cannot use them; and how a training job ends its time segment (light: a
script imports this before torch).

A training job's segment ends (its state saved, exit 75, resubmitted by Snakemake) at the first step
boundary after any of: segment_seconds of training (the planner's); the job's own deadline, its
SLURM end time less the planner's margin (set_limits: a slow start, a queue's lower limit); SLURM's
warning signal (sbatch --signal=USR1@margin, or `scancel --signal=USR1`: catch_stop_signal).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta


def log_to_file(path: str):
    """Redirect stdout and stderr (file descriptors too, so C libraries' output lands there).
    Returns a stream to the original stderr, for the rare line the user must see on the terminal."""
    terminal = os.fdopen(os.dup(2), "w")
    open(path, "w").close()
    log = open(path, "a", buffering=1)  # append: a warm worker's child writes to the same file
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    return terminal


# Set in a process (or step) SLURM gave GPUs to (gres with device files, as on every GPU cluster)
GPU_ALLOCATION_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS")


def check_cuda(environ=os.environ) -> None:
    """Stop with one line where SLURM allocated GPUs but torch cannot use them (a CPU wheel, a driver
    older than the wheel's CUDA): such a job would otherwise train on the CPU without a word.
    FTSCALE_DEVICE=cpu runs it on the CPU on purpose. Imports torch only in a GPU allocation, and only
    where it is installed: the data and analysis environments (envs/) have none and compute nothing
    on a GPU, so torch is an optional import here, not one of their packages."""
    allocated = next((f"{name}={environ[name]}" for name in GPU_ALLOCATION_VARIABLES if environ.get(name)), None)
    if allocated is None or environ.get("FTSCALE_DEVICE") == "cpu" or importlib.util.find_spec("torch") is None:
        return
    torch = importlib.import_module("torch")

    if not torch.cuda.is_available():
        sys.exit(
            f"GPU job without CUDA: SLURM allocated GPUs ({allocated}) but torch {torch.__version__} "
            f"(CUDA {torch.version.cuda or 'none: a CPU build'}) cannot use them; install the torch build "
            f"for this cluster's driver (nvidia-smi shows its CUDA version), or set FTSCALE_DEVICE=cpu"
        )


# EX_TEMPFAIL (sysexits.h): "try again later". A training job's script exits with it when its time
# segment ends (segment_seconds); Snakemake's --retries submits the job again, which resumes.
SEGMENT_EXIT_CODE = 75


class SegmentEnd(Exception):
    """A time-limited segment is over: the resume state of `step` is saved, and submitting the same
    job again continues from it. Raised by pretrain() and finetune() given segment_seconds."""

    def __init__(self, step: int):
        super().__init__(f"saved at step {step}; resubmit to continue")
        self.step = step


def segment_seconds(resources) -> float | None:
    """A rule's segment length (resources.segment_seconds, set by the planner on GPU training jobs;
    absent: no segments). Snakemake casts a float resource to int, so a fraction of a second (the
    tests' one-step segments) comes as a string."""
    value = resources.get("segment_seconds")
    return None if value is None else float(value)


DEADLINE = "FTSCALE_SEGMENT_DEADLINE"  # epoch seconds: the segment ends at the first step after it
PG_TIMEOUT = "FTSCALE_PG_TIMEOUT_SECONDS"  # how long a rank waits in a collective (process group timeout)
STOP_SIGNAL = signal.SIGUSR1  # SLURM's warning (sbatch --signal=USR1@margin)
_stop = {"requested": False}


def job_end_time(environ=os.environ) -> float | None:
    """This SLURM job's end time (epoch seconds): SLURM_JOB_END_TIME where SLURM sets it, else squeue's
    (%e, local time); None outside SLURM or where neither says."""
    if environ.get("SLURM_JOB_END_TIME", "").isdigit():
        return float(environ["SLURM_JOB_END_TIME"])
    if not environ.get("SLURM_JOB_ID"):
        return None
    try:
        end = subprocess.run(
            ["squeue", "-h", "-j", environ["SLURM_JOB_ID"], "-o", "%e"], capture_output=True, text=True, timeout=60
        ).stdout.strip()
        return datetime.fromisoformat(end).timestamp()
    except (OSError, subprocess.TimeoutExpired, ValueError):  # no squeue, or "N/A"/"Unknown"
        return None


def set_limits(resources, environ=os.environ) -> None:
    """What a training job's script does before it starts: the segment's deadline from the job's own
    end time, end - (runtime - segment_seconds) (the planner's margin for the final save), and the
    process group timeout, the job's runtime (resources.runtime, minutes): no rank gives up waiting
    for another (rank 0 saving the model, a slow load) while the job may still run. Both through
    the environment, which the warm worker, torchrun and srun pass to the ranks."""
    seconds, runtime = segment_seconds(resources), resources.get("runtime")
    if runtime:
        environ[PG_TIMEOUT] = str(int(runtime) * 60)
    end = job_end_time(environ) if seconds is not None and runtime else None
    if end is not None:
        environ[DEADLINE] = str(end - (int(runtime) * 60 - seconds))


def process_group_timeout(environ=os.environ) -> timedelta | None:
    """set_limits' timeout; None: torch's default."""
    return timedelta(seconds=float(environ[PG_TIMEOUT])) if environ.get(PG_TIMEOUT) else None


def ignore_stop_signal() -> None:
    """Until the training loop catches it: a warning that comes while a job loads would kill it (the
    default action); ignored, the job's deadline (set_limits) ends the segment after its first step."""
    try:
        signal.signal(STOP_SIGNAL, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def catch_stop_signal() -> None:
    """From now on STOP_SIGNAL ends the segment at the next step boundary instead of killing the process."""
    _stop["requested"] = False
    try:
        signal.signal(STOP_SIGNAL, lambda signum, frame: _stop.update(requested=True))
    except ValueError:  # not the main thread: the signal keeps its default
        pass


def segment_stop_due(environ=os.environ) -> bool:
    """Whether the stop signal came or the job's deadline passed (see the module docstring)."""
    return _stop["requested"] or (DEADLINE in environ and time.time() >= float(environ[DEADLINE]))


def end_segment(end: SegmentEnd):
    """What a script does with a SegmentEnd: one log line, then SEGMENT_EXIT_CODE."""
    print(end, flush=True)
    sys.exit(SEGMENT_EXIT_CODE)
