"""`ftscale run`: Snakemake that picks up after any crash, and one run per directory.

A run killed with kill -9 or by a power loss leaves Snakemake's own lock (.snakemake/locks) and
jobs marked incomplete. The workflow profile sets `rerun-incomplete`; the lock is safe to remove
only when no other run uses the directory, and that is what this entry point knows: it holds a
kernel lock (flock on .snakemake/ftscale-run.lock) for as long as it and its Snakemake live, which
the kernel drops when they die however they die. So, in order:

1. take the flock, or refuse with one line (another run is running here);
2. refuse with one line if snakemake processes run in the directory anyway (started outside
   `ftscale run`, or job processes left over from a run whose Snakemake alone was killed);
3. `snakemake --unlock` if a lock is left, since no run can own it now;
4. remove sealed output directories whose files lost their sealed sizes (ftscale.runtime.integrity);
5. run Snakemake with the user's arguments, the flock passed down to it, forcing it (--forcerun)
   to redo the jobs a killed run left unfinished and the damaged outputs' jobs, and so what
   depends on them. `rerun-incomplete` alone is not enough: Snakemake deletes a job's outputs
   when it starts it, and a missing output whose dependents are complete from an earlier run
   (a job redone after a change, then killed) is not rebuilt.

A dry run (-n) changes nothing, so it goes straight to Snakemake.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from ftscale.runtime import integrity
from ftscale.runtime.internals.snakemake import snakemake_incomplete_outputs

RUN_LOCK = Path(".snakemake") / "ftscale-run.lock"
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"  # where Snakemake's file persistence keeps its locks
DRY_RUN_FLAGS = {"-n", "--dry-run", "--dryrun"}


class RunRefused(RuntimeError):
    """The run cannot start; str() is the one line to show."""


def workdir_of(snakemake_args: list[str]) -> Path:
    """The directory Snakemake will run in: --directory/-d, else here."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-d", "--directory", default=".")
    known, _ = parser.parse_known_args(snakemake_args)
    return Path(known.directory).resolve()


@contextmanager
def run_lock(workdir: Path):
    """Hold the directory's run lock (yields its file descriptor), or raise RunRefused."""
    path = workdir / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunRefused(
                f"another run is running in {workdir} (ftscale run pid {holder}): "
                f"wait for it to end, or stop it, then run again"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # the kernel drops the flock once Snakemake, which shares it, has ended too


def snakemake_processes(workdir: Path) -> list[int]:
    """Processes other than this one whose command line names snakemake and whose working directory
    is workdir (Linux /proc; elsewhere none are found). Snakemake's jobs run scripts from
    .snakemake/scripts/, so a job left behind by a killed Snakemake counts too."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"snakemake" in command and Path(os.readlink(entry / "cwd")) == workdir:
                found.append(pid)
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
    return sorted(found)


def snakemake_command(args: list[str]) -> list[str]:
    """Snakemake without the SLURM plugin's start-up probe (ftscale.runtime.internals.snakemake.main)."""
    return [sys.executable, "-m", "ftscale.runtime.internals.snakemake", *args]


def run_snakemake(args: list[str], lock_fd: int) -> int:
    """Run Snakemake holding the run lock too (if this process is killed, the lock lives on with it).
    Ctrl-C reaches Snakemake from the terminal; this process waits for it to shut down cleanly."""
    env = os.environ | {"FTSCALE_RUN_PGID": str(os.getpgrp())}  # for ftscale.runtime.faults
    process = subprocess.Popen(snakemake_command(args), pass_fds=(lock_fd,), env=env)
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signum))
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def remove_damaged_outputs(workdir: Path) -> list[str]:
    """Remove the damaged sealed directories under workdir/results; their paths for --forcerun."""
    removed = []
    for directory, reason in integrity.damaged(workdir / "results"):
        print(f"ftscale run: damaged output {reason}: removing {directory} to rebuild it", file=sys.stderr)
        shutil.rmtree(directory)
        removed.append(str(directory.relative_to(workdir)))
    return removed


def with_forcerun(args: list[str], targets: list[str]) -> list[str]:
    """args plus --forcerun of targets, merged into the user's own --forcerun/-R if given."""
    if not targets:
        return args
    for i, arg in enumerate(args):
        if arg in ("-R", "--forcerun"):
            return [*args[: i + 1], *targets, *args[i + 1 :]]
    return [*args, "--forcerun", *targets]


def run(args: list[str]) -> int:
    """The steps of the module docstring; returns Snakemake's exit status."""
    if DRY_RUN_FLAGS & set(args):
        return subprocess.run(snakemake_command(args)).returncode
    workdir = workdir_of(args)
    with run_lock(workdir) as lock_fd:
        others = snakemake_processes(workdir)
        if others:
            raise RunRefused(
                f"snakemake processes still run in {workdir} (pids {', '.join(map(str, others))}), "
                f"outside ftscale run or left by a killed run: wait for them or kill them, then run again"
            )
        locks = workdir / SNAKEMAKE_LOCKS
        if locks.is_dir() and any(locks.iterdir()):
            print(f"ftscale run: removing the lock a killed run left in {locks}", file=sys.stderr)
            unlocked = subprocess.run(snakemake_command([*args, "--unlock"]), capture_output=True, text=True)
            if unlocked.returncode != 0:
                return run_snakemake(args, lock_fd)  # Snakemake says why itself (a config error, ...)
        unfinished = snakemake_incomplete_outputs(workdir)
        if unfinished:
            print(
                f"ftscale run: redoing the jobs of {len(unfinished)} outputs a killed run left unfinished",
                file=sys.stderr,
            )
        return run_snakemake(with_forcerun(args, [*unfinished, *remove_damaged_outputs(workdir)]), lock_fd)
