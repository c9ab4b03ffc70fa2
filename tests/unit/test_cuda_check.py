"""A job SLURM gave GPUs stops with one line, before any work, where torch cannot use them (a CPU
wheel, a driver older than the wheel's CUDA), instead of training on the CPU without a word."""

import os
import subprocess
import sys

import pytest

from ftscale.runtime import jobs

# the job function: makes a directory, so whether any work ran is on disk
JOB = "from ftscale.runtime import worker; worker.call('os:mkdir', {{'path': {path!r}}})"


def run_job(tmp_path, **env):
    work = tmp_path / "work"
    no_cuda = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no usable GPU, on a GPU machine too
    for name in (*jobs.GPU_ALLOCATION_VARIABLES, "FTSCALE_DEVICE"):
        no_cuda.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", JOB.format(path=str(work))], capture_output=True, text=True, env=no_cuda | env
    )
    return result, work.exists()


@pytest.mark.parametrize("allocation", [{"SLURM_STEP_GPUS": "0,1"}, {"SLURM_JOB_GPUS": "3"}])
def test_a_gpu_allocation_without_cuda_stops_with_one_line_before_any_work(tmp_path, allocation):
    result, worked = run_job(tmp_path, **allocation)
    assert result.returncode != 0 and not worked
    name, value = next(iter(allocation.items()))
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"GPU job without CUDA: SLURM allocated GPUs ({name}={value}) but torch ")
    assert "FTSCALE_DEVICE=cpu" in result.stderr


@pytest.mark.parametrize("env", [{}, {"SLURM_STEP_GPUS": "0", "FTSCALE_DEVICE": "cpu"}])
def test_no_gpu_allocation_or_the_cpu_asked_for_runs_the_job(tmp_path, env):
    result, worked = run_job(tmp_path, **env)
    assert result.returncode == 0 and worked, result.stderr


def test_the_device_choice_checks_too(tmp_path):
    code = "from ftscale.train.model import device; print(device())"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "SLURM_STEP_GPUS": "0"}
    env.pop("FTSCALE_DEVICE", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode != 0 and result.stdout == "" and "GPU job without CUDA" in result.stderr
