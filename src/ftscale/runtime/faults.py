"""Fault injection for the crash-recovery tests (tests/faults/): a kill -9 at a named point.

FTSCALE_FAULT=<point> makes the first process that reaches that point SIGKILL the whole run,
as a power loss or `kill -9` would: the process group `ftscale run` leads (FTSCALE_RUN_PGID, which
it exports) and then itself (a job in the warm worker runs outside that group). Unset, the points
cost one environment lookup. Points: `tokenize` (a task split half written), `resume:<step>` (a
training job right after it saved its resumable state at that step), `aggregate` (metrics.csv
written, the other tables not), `analyze` (`ftscale analyze`'s fits written, its figures not). FTSCALE_FAULT=hold:<point> instead stops the process there, asleep,
after one line on stdout (`held at <point>`), for a test to cancel it at a known step (scancel).

FTSCALE_FAULT=slow_final_save makes rank 0 of a sharded job, about to write its outputs, wait until
the other ranks have exited: a save slower than anything they do (wait_for_other_ranks).
FTSCALE_FAULT=usr1:<step> instead sends SLURM's warning signal (jobs.STOP_SIGNAL) to the training
process itself at that step's boundary, as `--signal=USR1@margin` would (signal_point);
FTSCALE_FAULT=usr1_step:<step> makes rank 0 send it to every process of the job's step, as SLURM
does (its cgroup): the processes of session FTSCALE_STEP_SESSION and all their descendants
(torchrun starts its ranks in sessions of their own).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


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


def signal_point(name: str) -> None:
    fault = os.environ.get("FTSCALE_FAULT")
    if fault == f"usr1:{name}":
        os.kill(os.getpid(), signal.SIGUSR1)
    elif fault == f"usr1_step:{name}" and os.environ.get("RANK", "0") == "0":
        for pid in step_processes(int(os.environ["FTSCALE_STEP_SESSION"])):
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:  # ended meanwhile
                pass


def step_processes(session: int) -> list[int]:
    """The processes of `session` and all their descendants (Linux /proc)."""
    parent, in_session = {}, set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
        if int(fields[3]) == session:
            in_session.add(int(stat.parent.name))
    found, grown = in_session, True
    while grown:
        children = {pid for pid, ppid in parent.items() if ppid in found} - found
        found, grown = found | children, bool(children)
    return sorted(found)


def wait_for_other_ranks(name: str) -> None:
    """At FTSCALE_FAULT=<name>: wait until no other process of this one's parent (torchrun's agent)
    runs; the other ranks of a job on one node."""
    if os.environ.get("FTSCALE_FAULT") != name:
        return
    parent, me = os.getppid(), os.getpid()

    def others() -> bool:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and int(stat.parent.name) != me and fields[0] != "Z":
                return True
        return False

    while others():
        time.sleep(0.1)
