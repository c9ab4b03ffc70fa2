"""Fault injection for the crash-recovery tests (tests/faults/): a kill -9 at a named point.

FTSCALE_FAULT=<point> makes the first process that reaches that point SIGKILL the whole run,
as a power loss or `kill -9` would: the process group `ftscale run` leads (FTSCALE_RUN_PGID, which
it exports) and then itself (a job in the warm worker runs outside that group). Unset, the points
cost one environment lookup. Points: `tokenize` (a task split half written), `resume:<step>` (a
training job right after it saved its resumable state at that step), `aggregate` (metrics.csv
written, the other tables not).

FTSCALE_FAULT=usr1:<step> instead sends SLURM's warning signal (jobs.STOP_SIGNAL) to the training
process itself at that step's boundary, as `--signal=USR1@margin` would (signal_point).
"""
from __future__ import annotations

import os
import signal


def point(name: str) -> None:
    if os.environ.get("FTSCALE_FAULT") != name:
        return
    group = os.environ.get("FTSCALE_RUN_PGID")
    os.killpg(int(group) if group else os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def signal_point(name: str) -> None:
    if os.environ.get("FTSCALE_FAULT") == f"usr1:{name}":
        os.kill(os.getpid(), signal.SIGUSR1)
