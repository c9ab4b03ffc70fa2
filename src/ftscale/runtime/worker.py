"""A warm interpreter for local jobs: importing torch + transformers + peft costs seconds per process,
more than a toy finetune itself. The first training job on a machine starts a server that imports
them once; later jobs ask it to fork a child that runs the job function, with the job's working
directory, environment, sys.path and log. A job with no server answering (the first one, a SLURM
node, FTSCALE_WORKER=0) runs the function in its own process. Either way the same function runs.

Environments: the server runs on the job's interpreter (one server per interpreter) and imports
ftscale from where the job found it (first on PYTHONPATH): the job's code, also where another copy
is installed (a checkout run with PYTHONPATH=src; the conda envs install ftscale, envs/*.yaml).
An interpreter that lacks a module the server preloads gets no server: the job runs in its own
process, with one line in its log saying which module.

Trust: a job sends its whole environment and both sides unpickle what they receive, so the worker
talks to its own user only. The socket lives in a directory only the user can enter (checked before
every use), is itself 0600, and each side checks the other's uid with SO_PEERCRED before sending or
unpickling anything. Whatever fails a check, the job runs in its own process and its log says why.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import importlib.util
import os
import pickle
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from ftscale.runtime.jobs import SegmentEnd, check_cuda, ignore_stop_signal

PRELOAD = (
    "torch",
    "transformers",
    "transformers.models.llama.modeling_llama",
    "peft",
    "sacrebleu",
    "rouge_score.rouge_scorer",
    "numpy",
    "pandas",
)
IDLE_SECONDS = 120
UCRED = struct.Struct("3i")  # Linux struct ucred: pid, uid, gid


class Untrusted(Exception):
    """A socket directory or peer the worker must not trust: the job runs in its own process."""


class Unavailable(Exception):
    """This interpreter cannot run a server (a module to preload is missing): the job runs in its own process."""


def check_preloadable() -> None:
    """Unavailable unless every package of PRELOAD is importable here (found, not imported)."""
    missing = sorted({name.split(".")[0] for name in PRELOAD if importlib.util.find_spec(name.split(".")[0]) is None})
    if missing:
        raise Unavailable(f"{', '.join(missing)} not importable by {sys.executable} (the server preloads it)")


def server_environment() -> dict[str, str]:
    """The server's environment: the job's, with the directory this ftscale comes from first on
    PYTHONPATH, so `python -m ftscale.runtime.worker` runs the job's ftscale, installed or not."""
    root = str(Path(__file__).resolve().parents[2])
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, *rest])}


def enabled() -> bool:
    return (
        os.environ.get("FTSCALE_WORKER", "1") != "0"
        and "SLURM_JOB_ID" not in os.environ
        and hasattr(socket, "SO_PEERCRED")
    )  # no peer check (not Linux): no worker


def server_key() -> str:
    """One server per interpreter, installed library versions (a reinstall gets a new one) and ftscale
    checkout: a server preloads this package, so two checkouts (or worktrees) sharing a venv must not
    run each other's code. Also per ATEN_CPU_CAPABILITY: torch picks its CPU kernels once, at import, so
    a server must not run a job that asked for other kernels (the toy's results depend on them)."""
    stamps = [sys.executable, str(Path(__file__).resolve().parent), os.environ.get("ATEN_CPU_CAPABILITY", "")]
    for name in ("torch", "transformers", "peft"):
        spec = importlib.util.find_spec(name)
        stamps.append(f"{spec.origin}:{os.stat(spec.origin).st_mtime_ns}" if spec and spec.origin else name)
    return hashlib.sha256("|".join(stamps).encode()).hexdigest()[:16]


def private_dir() -> Path:
    """This user's socket directory, created if missing and checked: $XDG_RUNTIME_DIR/ftscale (the
    login session's own directory) where set, else ftscale-<uid> under the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    directory = Path(runtime) / "ftscale" if runtime else Path(tempfile.gettempdir()) / f"ftscale-{os.getuid()}"
    _check_parent(directory.parent)
    try:
        os.mkdir(directory, 0o700)  # never follows a symlink in the last component
    except FileExistsError:
        pass
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise Untrusted(f"{directory} is not a directory (a symlink or a file)")
    if info.st_uid != os.getuid():
        raise Untrusted(f"{directory} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()})")
    if stat.S_IMODE(info.st_mode) != 0o700:
        raise Untrusted(f"{directory} has mode {stat.S_IMODE(info.st_mode):04o}, not 0700")
    return directory


def _check_parent(parent: Path) -> None:
    """Where others may write to the parent, they could swap our directory for theirs after the
    check, unless the sticky bit stops them (as on /tmp)."""
    info = os.stat(parent)
    if info.st_uid not in (os.getuid(), 0):
        raise Untrusted(f"{parent} is owned by uid {info.st_uid}, neither this user nor root")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise Untrusted(f"{parent} is writable by others without the sticky bit")


def socket_path() -> Path:
    return private_dir() / f"worker-{server_key()}.sock"


def peer_pid(conn: socket.socket) -> int:
    """The peer's pid, once SO_PEERCRED shows it runs as this user; Untrusted otherwise."""
    pid, uid, _gid = UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    if uid != os.getuid():
        raise Untrusted(
            f"the process at the other end (pid {pid}) runs as uid {uid}, not this user (uid {os.getuid()})"
        )
    return pid


def _send(conn: socket.socket, obj) -> None:
    data = pickle.dumps(obj)
    conn.sendall(struct.pack("!Q", len(data)) + data)


def _receive(conn: socket.socket):
    header = conn.recv(8, socket.MSG_WAITALL)
    if len(header) < 8:
        raise ConnectionError("worker closed the connection")
    (size,) = struct.unpack("!Q", header)
    return pickle.loads(conn.recv(size, socket.MSG_WAITALL))


def call(target: str, kwargs: dict):
    """Import `module:function` and call it (first, a GPU job without CUDA stops: jobs.check_cuda; and
    SLURM's warning signal is ignored until a training loop catches it: jobs.ignore_stop_signal)."""
    check_cuda()
    ignore_stop_signal()
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


def run(target: str, log: str | None = None, **kwargs) -> None:
    """Run `module:function(**kwargs)` in a warm worker if one answers, else in this process."""
    if enabled():
        try:
            check_preloadable()
            if _run_in_worker(target, log, kwargs):
                return
        except (Untrusted, Unavailable, OSError) as reason:  # OSError: e.g. no directory could be made
            _note(log, f"warm worker not used, the job runs in its own process: {reason}")
    call(target, kwargs)


def _run_in_worker(target: str, log: str | None, kwargs: dict) -> bool:
    """True once the worker ran the job; False (and a server started for the next jobs) if none answers."""
    path = socket_path()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(path))
            peer_pid(conn)  # before the environment leaves this process
            _send(
                conn,
                {
                    "target": target,
                    "kwargs": kwargs,
                    "log": log,
                    "cwd": os.getcwd(),
                    "env": dict(os.environ),
                    "sys_path": list(sys.path),
                },
            )
            reply = _receive(conn)
    except (FileNotFoundError, ConnectionRefusedError, ConnectionError):
        _start_server(path)
        return False
    if reply.get("segment_end") is not None:  # as in-process: the script exits with SEGMENT_EXIT_CODE
        raise SegmentEnd(reply["segment_end"])
    if reply["error"]:
        sys.exit(f"job failed in the warm worker (traceback in {log}): {reply['error']}")
    return True


def _note(log: str | None, line: str) -> None:
    if log:
        with open(log, "a") as stream:
            stream.write(line + "\n")
    else:
        print(line, file=sys.stderr, flush=True)


def _start_server(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ftscale.runtime.worker", str(path)],
        start_new_session=True,
        env=server_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _child(conn: socket.socket, request: dict, client_pid: int) -> None:
    """In the forked child: become the job, run it, report back."""
    error, segment_end = None, None
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    threading.Thread(target=_exit_with_client, args=(client_pid,), daemon=True).start()
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["sys_path"]
        for name in [m for m in sys.modules if m == "ftscale" or m.startswith("ftscale.")]:
            del sys.modules[name]  # the job's own checkout of ftscale, not the server's
        if request["log"]:
            log = open(request["log"], "a", buffering=1)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
        call(request["target"], request["kwargs"])
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the job
        if type(exc).__name__ == SegmentEnd.__name__:  # the job's own (re-imported) ftscale.runtime.jobs class
            segment_end = exc.step
        else:
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        sys.stdout.flush()
        _send(conn, {"error": error, "segment_end": segment_end})
    finally:
        os._exit(0)


def _exit_with_client(pid: int) -> None:
    """A job whose client was killed (Ctrl-C, a scheduler) must not go on writing its outputs."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)


def _listen(path: Path) -> socket.socket:
    """Bind the socket 0600 from the start (a chmod after bind would leave a window)."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(umask)
    server.listen(16)
    server.settimeout(IDLE_SECONDS)
    return server


def serve(path: Path) -> None:
    directory = private_dir()  # checked again: the server trusts no path it is given
    if path.parent != directory:
        raise Untrusted(f"{path} is not in this user's private directory {directory}")
    lock = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server already runs
    for module in PRELOAD:
        importlib.import_module(module)
    server = _listen(path)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break  # idle: a later job starts a fresh server
            with conn:
                try:
                    client_pid = peer_pid(conn)  # before a byte of the request is read
                    request = _receive(conn)
                except (Untrusted, ConnectionError):
                    continue  # closed unanswered; the server goes on serving its user
                if os.fork() == 0:
                    server.close()
                    _child(conn, request, client_pid)
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
