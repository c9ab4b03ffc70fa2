"""bench/gpu_check.py: its MFU arithmetic against hand-computed numbers, the line it prints where
there is no GPU, and its CPU smoke mode (every code path at toy size, 2 gloo ranks included)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402


def test_flops_per_token_is_six_per_parameter_plus_attention():
    # 6 x 1000 + 12 x 2 layers x 3 heads x 4 head dim x 5 positions = 6000 + 1440
    assert gpu_check.flops_per_token(1000, 2, 3, 4, 5) == 7440


def test_mfu_is_achieved_over_peak_flops():
    # 100 tokens x 7440 FLOPs in 2 s = 372,000 FLOP/s, against a peak of 1e6 FLOP/s (1e-6 TFLOP/s)
    assert gpu_check.mfu(100, 2.0, 7440, 1e-6) == pytest.approx(0.372)
    # the paper's 1B shape: 8 windows of 1024 tokens in 0.5 s on an H100 (989 TFLOP/s)
    per_token = gpu_check.flops_per_token(1_000_000_000, 16, 8, 256, 1024)
    assert per_token == 6_000_000_000 + 402_653_184
    assert gpu_check.mfu(8192, 0.5, per_token, 989) == pytest.approx(8192 * 6_402_653_184 / 0.5 / 989e12)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA H200", 989.0),
    ],
)
def test_peak_comes_from_the_device_name(name, expected):
    assert gpu_check.peak_tflops(name)[0] == expected


def test_an_unknown_device_is_measured_against_the_fallback_and_says_so():
    peak, source = gpu_check.peak_tflops("Some Future GPU")
    assert peak == gpu_check.FALLBACK_PEAK_TFLOPS and "unknown device 'Some Future GPU'" in source
    assert gpu_check.peak_tflops("Some Future GPU", given=500.0) == (500.0, "--peak-tflops")


def test_gpu_and_cpu_metrics_are_compared_within_tolerances():
    row = {
        "task": "t",
        "model": "m",
        "pretrain_tokens": "1",
        "method": "fmt",
        "pet_size": "",
        "finetune_examples": "8",
        "seed": "0",
        "dev_loss": "2.0",
        "test_loss": "2.0",
        "bleu": "10",
        "chrf": "30",
    }
    assert gpu_check.compare_metrics([row], [row], 0.05, 5) == []
    close = row | {"dev_loss": "2.09", "bleu": "14"}
    assert gpu_check.compare_metrics([close], [row], 0.05, 5) == []
    far = row | {"dev_loss": "2.11", "bleu": "16"}
    assert [p.split(" ")[0] for p in gpu_check.compare_metrics([far], [row], 0.05, 5)] == ["dev_loss", "mean"]


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    no_gpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, on a GPU machine too
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py")], capture_output=True, text=True, env=no_gpu
    )
    assert result.returncode == 0
    assert result.stdout.strip().splitlines() == [
        "gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing to check"
    ]


@pytest.mark.parametrize(
    "run",
    [
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cuda"],
        # -o: never (re)build the venv from the test
        [
            "make",
            "-s",
            "-o",
            f"{Path(sys.executable).parent}/snakemake",
            "gpu-check",
            "DEVICE=cuda",
            f"BIN={Path(sys.executable).parent}",
        ],
    ],
)
def test_asked_for_cuda_without_it_is_one_line_and_a_failure(run):
    no_gpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(run, capture_output=True, text=True, env=no_gpu, cwd=ROOT)
    assert result.returncode != 0 and result.stdout == ""
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("gpu-check:")]
    assert "--device cuda but torch" in line and "torch.cuda.is_available() is False" in line


@pytest.mark.distributed
def test_the_cpu_smoke_mode_runs_every_code_path(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--dry"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "MFU" in result.stdout and "sharded 2-rank pretraining: agrees with 1 device" in result.stdout
