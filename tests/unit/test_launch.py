"""The parts of `ftscale run` that decide whether a run may start (tests/faults runs it whole)."""

import os
import subprocess
import sys

import pytest

from ftscale.runtime import launch


def test_workdir_is_snakemakes_directory_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert launch.workdir_of(["--cores", "2"]) == tmp_path
    assert launch.workdir_of(["--cores", "2", "--directory", "sub", "--configfile", "x.yaml"]) == tmp_path / "sub"
    assert launch.workdir_of(["-d", str(tmp_path / "other")]) == tmp_path / "other"


def test_the_run_lock_is_held_once_and_released_on_exit(tmp_path):
    with launch.run_lock(tmp_path):
        with pytest.raises(launch.RunRefused, match=f"another run is running in {tmp_path} .*pid {os.getpid()}"):
            with launch.run_lock(tmp_path):
                pass
    with launch.run_lock(tmp_path):  # released: a later run takes it
        pass


def test_the_kernel_drops_the_run_lock_of_a_killed_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from ftscale.runtime import launch\n"
                "with launch.run_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)"
            ),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(launch.RunRefused):
        with launch.run_lock(tmp_path):
            pass
    holder.kill()  # SIGKILL: no cleanup runs in the holder
    holder.wait()
    with launch.run_lock(tmp_path):
        pass


def test_snakemake_processes_are_found_by_command_line_and_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    named_here = subprocess.Popen([*sleep, "snakemake"], cwd=tmp_path)
    named_elsewhere = subprocess.Popen([*sleep, "snakemake"], cwd=elsewhere)
    unnamed_here = subprocess.Popen(sleep, cwd=tmp_path)
    try:
        assert launch.snakemake_processes(tmp_path) == [named_here.pid]
    finally:
        for process in (named_here, named_elsewhere, unnamed_here):
            process.kill()
            process.wait()


def test_damaged_outputs_are_forced_to_rerun_within_the_users_own_forcerun():
    assert launch.with_forcerun(["--cores", "2"], []) == ["--cores", "2"]
    assert launch.with_forcerun(["--cores", "2"], ["a", "b"]) == ["--cores", "2", "--forcerun", "a", "b"]
    assert launch.with_forcerun(["-R", "x", "--cores", "2"], ["a"]) == ["-R", "a", "x", "--cores", "2"]
