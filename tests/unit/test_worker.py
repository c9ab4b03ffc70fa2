"""The warm worker runs a job function exactly as a plain process would, reports failures, and trusts
no one but its own user. The tests run as root and play the other user as 'nobody' (uid 65534) in
forked children: a socket squatter and an intruding client."""

import io
import os
import pickle
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from ftscale.runtime import worker
from ftscale.runtime.jobs import SegmentEnd

NOBODY = 65534
JOB = "tests.unit.test_worker:record_process"


def squatter(bound: socket.socket, report) -> None:
    """Listens on a socket bound by the test (a client sees the uid that called listen), takes any
    request as a worker would, and answers "done" without running anything."""
    bound.listen(4)
    report("listening")
    while True:
        conn, _ = bound.accept()
        header = conn.recv(8, socket.MSG_WAITALL)
        if len(header) == 8:
            conn.recv(struct.unpack("!Q", header)[0], socket.MSG_WAITALL)
            report("received a request")
            reply = pickle.dumps({"error": None})
            conn.sendall(struct.pack("!Q", len(reply)) + reply)
        conn.close()


def intruder(path: Path, request: bytes, report) -> None:
    """Connects, sends a request, and says whether the server closed without answering."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(60)
        conn.connect(str(path))
        try:
            conn.sendall(request)
            answer = conn.recv(1)
        except ConnectionError:
            answer = b""
    report("closed unanswered" if answer == b"" else "answered")


class Nobody(NamedTuple):
    pid: int
    report: io.TextIOBase


def need_root() -> None:
    """Playing 'nobody' (or handing it a file) takes root: without it, say so, and skip; under CI fail."""
    if os.geteuid() != 0:
        message = f"plays another user ('nobody', uid {NOBODY}), which takes root; this runs as uid {os.geteuid()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def fork_as_nobody(play, *args) -> Nobody:
    """Runs play(*args, report) in a forked child with uid and gid 'nobody' (a fork, not a new
    interpreter: ours may live where 'nobody' cannot read); report(line) writes to a pipe, and so
    does a failure."""
    need_root()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:

        def report(line):
            os.write(write, f"{line}\n".encode())

        try:
            os.close(read)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            play(*args, report)
        except BaseException as exc:  # noqa: BLE001 - the test shows it
            report(f"failed as nobody: {exc!r}")
        finally:
            os._exit(0)
    os.close(write)
    return Nobody(pid, os.fdopen(read))


def stop(nobody: Nobody, kill: bool = True) -> str:
    """Everything it reported."""
    if kill:
        os.kill(nobody.pid, signal.SIGTERM)
    os.waitpid(nobody.pid, 0)
    with nobody.report:
        return nobody.report.read()


def record_process(path):
    """A job that says which process ran it: the caller's own, or a child of the server."""
    print("the job ran")
    Path(path).write_text(f"{os.getpid()} {os.getppid()}")


def end_a_segment(path, step):
    """A training job whose time segment ends (ftscale.runtime.jobs.SegmentEnd), after saying who ran it."""
    from ftscale.runtime.jobs import SegmentEnd

    record_process(path)
    raise SegmentEnd(step)


def job_pids(path: Path) -> tuple[int, int]:
    pid, parent = path.read_text().split()
    return int(pid), int(parent)


class Server(NamedTuple):
    path: Path
    pid: int


def wait_until_listening(path: Path, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180  # generous: the server imports torch on a shared machine
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(path))  # the server drops a connection that sends nothing
                return
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.2)
    raise AssertionError(f"the worker server did not start listening at {path}")


@pytest.fixture(scope="module")
def warm_server():
    """One server for this module, in its own runtime directory under /tmp (so that the intruder
    test can open a way in for 'nobody'), stopped at the end."""
    runtime = Path(tempfile.mkdtemp(prefix="ftscale-test-runtime-"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_RUNTIME_DIR", str(runtime))
        env.setenv("FTSCALE_WORKER", "1")
        env.delenv("SLURM_JOB_ID", raising=False)
        path = worker.socket_path()
        server = worker._start_server(path)
        try:
            wait_until_listening(path, server)
            yield Server(path, server.pid)
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(runtime)


@pytest.fixture
def own_runtime_dir(tmp_path, monkeypatch):
    """A runtime directory with no server in it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("FTSCALE_WORKER", "1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return runtime


def squat(path: Path) -> Nobody:
    """A socket at `path` that 'nobody' listens on; returns once it listens."""
    need_root()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(str(path))
        os.chown(path, NOBODY, NOBODY)
        squatting = fork_as_nobody(squatter, bound)
    assert squatting.report.readline() == "listening\n"
    return squatting


def test_job_runs_in_a_child_of_the_server_with_callers_cwd_and_log(warm_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    worker.run(JOB, log=str(tmp_path / "job.log"), path="pids.txt")
    pid, parent = job_pids(tmp_path / "pids.txt")  # relative to the caller's directory
    assert pid != os.getpid() and parent == warm_server.pid  # not in-process, forked by the server
    assert (tmp_path / "job.log").read_text() == "the job ran\n"


def test_failure_in_worker_is_reported_with_the_log(warm_server, tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit, match="warm worker.*FileNotFoundError"):
        worker.run("ftscale.config:load", log=str(log), path=str(tmp_path / "missing.yaml"))
    assert "Traceback" in log.read_text()


def test_a_segment_end_in_the_worker_reaches_the_job_as_in_process(warm_server, tmp_path):
    """The script turns SegmentEnd into exit code 75 (resubmit): the worker must hand it back as such,
    not as a failed job."""
    with pytest.raises(SegmentEnd) as end:
        worker.run(
            "tests.unit.test_worker:end_a_segment",
            log=str(tmp_path / "job.log"),
            path=str(tmp_path / "pids.txt"),
            step=7,
        )
    assert end.value.step == 7
    assert job_pids(tmp_path / "pids.txt")[1] == warm_server.pid  # it did run in the worker
    assert "Traceback" not in (tmp_path / "job.log").read_text()


def test_socket_is_0600_in_a_0700_directory_of_the_user(warm_server):
    directory, socket_file = os.lstat(warm_server.path.parent), os.lstat(warm_server.path)
    assert stat.S_ISDIR(directory.st_mode) and stat.S_IMODE(directory.st_mode) == 0o700
    assert stat.S_ISSOCK(socket_file.st_mode) and stat.S_IMODE(socket_file.st_mode) == 0o600
    assert directory.st_uid == socket_file.st_uid == os.getuid()


class Unpickled:
    """Unpickling this creates a directory: proof that the server read the request."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_server_refuses_another_uid_before_unpickling(warm_server, tmp_path):
    # The filesystem is opened up as a group-writable umask or a careless chmod would: only the
    # peer check is left between 'nobody' and the server.
    opened = [warm_server.path.parent.parent, warm_server.path.parent]
    for directory in opened:
        directory.chmod(0o711)
    warm_server.path.chmod(0o666)
    marker = tmp_path / "unpickled"
    request = pickle.dumps(Unpickled(marker))
    try:
        output = stop(fork_as_nobody(intruder, warm_server.path, struct.pack("!Q", len(request)) + request), kill=False)
    finally:
        for directory in opened:
            directory.chmod(0o700)
        warm_server.path.chmod(0o600)
    assert output == "closed unanswered\n"
    assert not marker.exists()
    worker.run(JOB, path=tmp_path / "pids.txt")  # and it goes on serving its user
    assert job_pids(tmp_path / "pids.txt")[1] == warm_server.pid


def test_a_directory_squatted_at_the_tmp_path_by_another_uid_is_not_used(tmp_path, monkeypatch):
    """No XDG_RUNTIME_DIR: the socket's directory is ftscale-<uid> in the (sticky, world-writable) temp
    dir, a name anyone can take first. Taken by 'nobody', with a socket of its own inside, it is
    refused for its owner before any connection."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("FTSCALE_WORKER", "1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    tmp_path.chmod(0o1777)  # like /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    taken = tmp_path / f"ftscale-{os.getuid()}"
    owned_by_nobody(taken)
    squatter = squat(taken / f"worker-{worker.server_key()}.sock")
    log = tmp_path / "job.log"
    try:
        worker.run(JOB, log=str(log), path=tmp_path / "pids.txt")
    finally:
        heard = stop(squatter)
    assert "received" not in heard
    assert job_pids(tmp_path / "pids.txt")[0] == os.getpid()  # in-process
    assert f"{taken} is owned by uid {NOBODY}" in log.read_text()


def test_socket_squatted_at_the_new_path_by_another_uid_is_not_used(own_runtime_dir, tmp_path):
    path = worker.socket_path()
    squatter = squat(path)
    log = tmp_path / "job.log"
    try:
        worker.run(JOB, log=str(log), path=tmp_path / "pids.txt")
    finally:
        heard = stop(squatter)
    assert "received" not in heard  # not even the environment was sent
    assert job_pids(tmp_path / "pids.txt")[0] == os.getpid()  # the job ran, in-process
    assert log.read_text().count("warm worker not used") == 1
    assert f"runs as uid {NOBODY}" in log.read_text()
    assert os.lstat(path).st_uid == NOBODY  # no server of ours replaced it


def group_readable(directory: Path) -> None:
    directory.mkdir()
    directory.chmod(0o750)


def owned_by_nobody(directory: Path) -> None:
    need_root()
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)


def symlink_to_own_directory(directory: Path) -> None:
    target = directory.parent.parent / "elsewhere"
    target.mkdir(mode=0o700)
    directory.symlink_to(target)


def runtime_writable_by_all(directory: Path) -> None:
    directory.parent.chmod(0o777)


@pytest.mark.parametrize(
    "make_unsafe, reason",
    [
        (group_readable, "has mode 0750, not 0700"),
        (owned_by_nobody, f"is owned by uid {NOBODY}"),
        (symlink_to_own_directory, "is not a directory"),
        (runtime_writable_by_all, "writable by others without the sticky bit"),
    ],
)
def test_unsafe_socket_directory_is_refused(own_runtime_dir, tmp_path, make_unsafe, reason):
    directory = own_runtime_dir / "ftscale"
    make_unsafe(directory)
    log = tmp_path / "job.log"
    worker.run(JOB, log=str(log), path=tmp_path / "pids.txt")
    assert job_pids(tmp_path / "pids.txt")[0] == os.getpid()
    assert log.read_text().count("warm worker not used") == 1
    assert reason in log.read_text()
    assert not list(directory.parent.glob("ftscale/*"))  # no server was started in it


def test_without_a_runtime_dir_a_private_directory_is_made_under_tmp(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    tmp_path.chmod(0o1777)  # like /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    directory = worker.private_dir()
    info = os.lstat(directory)
    assert directory == tmp_path / f"ftscale-{os.getuid()}"
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()


def test_disabled_worker_runs_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_WORKER", "0")
    worker.run(JOB, path=tmp_path / "pids.txt")
    assert job_pids(tmp_path / "pids.txt")[0] == os.getpid()
    with pytest.raises(FileNotFoundError):  # in-process: the exception itself
        worker.run("ftscale.config:load", path=str(tmp_path / "missing.yaml"))


def test_no_worker_on_a_slurm_node(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert not worker.enabled()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("FTSCALE_WORKER", "0")
    assert not worker.enabled()


def test_an_interpreter_missing_a_preloaded_module_runs_the_job_in_process_with_one_line(
    own_runtime_dir, tmp_path, monkeypatch
):
    """As in a conda environment that lacks one: no server is started, the log says why."""
    monkeypatch.setattr(worker, "PRELOAD", ("numpy", "ftscale_absent_module.sub"))
    worker.run(JOB, log=str(tmp_path / "job.log"), path=tmp_path / "pids.txt")
    assert job_pids(tmp_path / "pids.txt")[0] == os.getpid()
    (line,) = (tmp_path / "job.log").read_text().splitlines()
    assert line.startswith(
        "warm worker not used, the job runs in its own process: ftscale_absent_module not importable"
    )
    assert not (own_runtime_dir / "ftscale").exists()  # no server was started


def test_the_server_finds_this_ftscale_where_it_is_not_installed(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    src = str(Path(worker.__file__).resolve().parents[2])
    assert worker.server_environment()["PYTHONPATH"].split(os.pathsep) == [src, "/elsewhere"]
    monkeypatch.delenv("PYTHONPATH")
    assert worker.server_environment()["PYTHONPATH"] == src


def test_each_checkout_gets_its_own_server(monkeypatch):
    """A server preloads ftscale: two checkouts sharing one venv must not share a server, or a job
    would run the other checkout's code."""
    here = worker.server_key()
    monkeypatch.setattr(worker, "__file__", "/elsewhere/src/ftscale/runtime/worker.py")
    assert worker.server_key() != here


def test_other_cpu_kernels_get_their_own_server(monkeypatch):
    """torch reads ATEN_CPU_CAPABILITY once, at import: a warm server must not run a job that asked
    for other vector kernels (tests/workflow/test_toy_machines.py compares two)."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    default = worker.server_key()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    avx2 = worker.server_key()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert len({default, avx2, worker.server_key()}) == 3
