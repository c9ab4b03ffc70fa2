"""Fault injection for the crash-recovery tests (tests/faults/): a kill -9 at a named point.

FTSCALE_FAULT=<point> makes the first process that reaches that point SIGKILL the whole run,
as a power loss or `kill -9` would: the process group `ftscale run` leads (FTSCALE_RUN_PGID, which
it exports) and then itself (a job in the warm worker runs outside that group). Unset, the points
cost one environment lookup. Points: `tokenize` (a task split half written), `resume:<step>` (a
training job right after it saved its resumable state at that step), `aggregate` (metrics.csv
written, the other tables not). FTSCALE_FAULT=hold:<point> instead stops the process there, asleep,
after one line on stdout (`held at <point>`), for a test to cancel it at a known step (scancel).
"""
from __future__ import annotations

import os
import signal
import time


def point(name: str) -> None:
    fault = os.environ.get("FTSCALE_FAULT")
    if fault == f"hold:{name}":
        print(f"held at {name}", flush=True)
        while True:
            time.sleep(60)
    if fault != name:
        return
    group = os.environ.get("FTSCALE_RUN_PGID")
    os.killpg(int(group) if group else os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
