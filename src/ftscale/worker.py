"""A warm interpreter for local jobs: importing torch + transformers + peft costs seconds per process,
more than a toy finetune itself. The first training job on a machine starts a server that imports
them once; later jobs ask it to fork a child that runs the job function, with the job's working
directory, environment, sys.path and log. A job with no server answering (the first one, a SLURM
node, FTSCALE_WORKER=0) runs the function in its own process. Either way the same function runs.
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
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

PRELOAD = ("torch", "transformers", "transformers.models.llama.modeling_llama", "peft", "sacrebleu",
           "rouge_score.rouge_scorer", "numpy", "pandas")
IDLE_SECONDS = 120


def enabled() -> bool:
    return os.environ.get("FTSCALE_WORKER", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def socket_path() -> Path:
    """One server per interpreter and installed library versions (a reinstall gets a new one)."""
    stamps = [sys.executable]
    for name in ("torch", "transformers", "peft"):
        spec = importlib.util.find_spec(name)
        stamps.append(f"{spec.origin}:{os.stat(spec.origin).st_mtime_ns}" if spec and spec.origin else name)
    key = hashlib.sha256("|".join(stamps).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ftscale-worker-{os.getuid()}-{key}.sock"


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
    """Import `module:function` and call it."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


def run(target: str, log: str | None = None, **kwargs) -> None:
    """Run `module:function(**kwargs)` in a warm worker if one answers, else in this process."""
    if enabled():
        path = socket_path()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(str(path))
                _send(conn, {"target": target, "kwargs": kwargs, "log": log, "cwd": os.getcwd(),
                             "env": dict(os.environ), "sys_path": list(sys.path),
                             "client_pid": os.getpid()})
                reply = _receive(conn)
            if reply["error"]:
                sys.exit(f"job failed in the warm worker (traceback in {log}): {reply['error']}")
            return
        except (FileNotFoundError, ConnectionRefusedError, ConnectionError):
            _start_server(path)        # for the jobs after this one
    call(target, kwargs)


def _start_server(path: Path) -> None:
    subprocess.Popen([sys.executable, "-m", "ftscale.worker", str(path)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _child(conn: socket.socket, request: dict) -> None:
    """In the forked child: become the job, run it, report back."""
    error = None
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    threading.Thread(target=_exit_with_client, args=(request["client_pid"],), daemon=True).start()
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = request["sys_path"]
        for name in [m for m in sys.modules if m == "ftscale" or m.startswith("ftscale.")]:
            del sys.modules[name]      # the job's own checkout of ftscale, not the server's
        if request["log"]:
            log = open(request["log"], "a", buffering=1)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
        call(request["target"], request["kwargs"])
    except BaseException as exc:   # noqa: BLE001 - everything goes back to the job
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        sys.stdout.flush()
        _send(conn, {"error": error})
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


def serve(path: Path) -> None:
    lock = open(f"{path}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return                         # another server already runs
    for module in PRELOAD:
        importlib.import_module(module)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(IDLE_SECONDS)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # children are reaped automatically
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break                  # idle: a later job starts a fresh server
            request = _receive(conn)
            if os.fork() == 0:
                server.close()
                _child(conn, request)
            conn.close()
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
