"""What every rule's script does first: send all output to the rule's log; and how a training job
that ran out of its time segment ends (light: a script imports this before torch)."""
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
