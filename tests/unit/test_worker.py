"""The warm worker runs a job function exactly as a plain process would, and reports failures."""
import os
import time

import pytest

from ftscale import worker


@pytest.fixture
def warm_server(monkeypatch):
    monkeypatch.setenv("FTSCALE_WORKER", "1")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = worker.socket_path()
    if not path.exists():
        worker._start_server(path)
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert path.exists(), "the worker server did not start"
    return path


def test_job_runs_in_worker_with_callers_cwd_and_log(warm_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "source.txt").write_text("a\nb\n")
    worker.run("shutil:copyfile", log=str(tmp_path / "job.log"), src="source.txt", dst="copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "a\nb\n"   # relative to the caller's directory


def test_failure_in_worker_is_reported_with_the_log(warm_server, tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit, match="warm worker.*FileNotFoundError"):
        worker.run("ftscale.config:load", log=str(log), path=str(tmp_path / "missing.yaml"))
    assert "Traceback" in log.read_text()


def test_disabled_worker_runs_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_WORKER", "0")
    (tmp_path / "source.txt").write_text("x\n")
    worker.run("shutil:copyfile", src=tmp_path / "source.txt", dst=tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "x\n"
    with pytest.raises(FileNotFoundError):   # in-process: the exception itself
        worker.run("ftscale.config:load", path=str(tmp_path / "missing.yaml"))


def test_no_worker_on_a_slurm_node(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert not worker.enabled()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("FTSCALE_WORKER", "0")
    assert not worker.enabled()
