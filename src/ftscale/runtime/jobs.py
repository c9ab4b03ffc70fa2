"""What every rule's script does first: send all output to the rule's log; a job SLURM gave GPUs stops
with one line where torch cannot use them; and how a training job that ran out of its time segment
ends (light: a script imports this before torch)."""
from __future__ import annotations

import os
import sys


def log_to_file(path: str):
    """Redirect stdout and stderr (file descriptors too, so C libraries' output lands there).
    Returns a stream to the original stderr, for the rare line the user must see on the terminal."""
    terminal = os.fdopen(os.dup(2), "w")
    open(path, "w").close()
    log = open(path, "a", buffering=1)   # append: a warm worker's child writes to the same file
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    return terminal


# Set in a process (or step) SLURM gave GPUs to (gres with device files, as on every GPU cluster)
GPU_ALLOCATION_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS")


def check_cuda(environ=os.environ) -> None:
    """Stop with one line where SLURM allocated GPUs but torch cannot use them (a CPU wheel, a driver
    older than the wheel's CUDA): such a job would otherwise train on the CPU without a word.
    FTSCALE_DEVICE=cpu runs it on the CPU on purpose. Imports torch only in a GPU allocation."""
    allocated = next((f"{name}={environ[name]}" for name in GPU_ALLOCATION_VARIABLES if environ.get(name)), None)
    if allocated is None or environ.get("FTSCALE_DEVICE") == "cpu":
        return
    import torch

    if not torch.cuda.is_available():
        sys.exit(f"GPU job without CUDA: SLURM allocated GPUs ({allocated}) but torch {torch.__version__} "
                 f"(CUDA {torch.version.cuda or 'none: a CPU build'}) cannot use them; install the torch build "
                 f"for this cluster's driver (nvidia-smi shows its CUDA version), or set FTSCALE_DEVICE=cpu")


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


def end_segment(end: SegmentEnd):
    """What a script does with a SegmentEnd: one log line, then SEGMENT_EXIT_CODE."""
    print(end, flush=True)
    sys.exit(SEGMENT_EXIT_CODE)
