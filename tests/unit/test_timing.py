"""The planner's time model (ftscale.plan.timing): the stated assumption without a calibration file,
and with one of known numbers, step times from its MFU per (parameters, GPUs) plus FSDP's traffic at
its bandwidth where a GPU count was not measured; `ftscale grid` says which model its hours come from."""

import json
import math
import re
from pathlib import Path

import pytest

from ftscale import config as study_config
from ftscale.plan import memory, sizing, timing
from ftscale.plan import summary as grid_summary

ROOT = Path(__file__).resolve().parents[2]
PEAK_TFLOPS = 100.0
CALIBRATION = {
    "device": "test GPU",
    "peak_tflops": PEAK_TFLOPS,
    "mfu": [
        {"parameters": 1e9, "gpus": 1, "mfu": 0.5},
        {"parameters": 4e9, "gpus": 1, "mfu": 0.4},
        {"parameters": 1e9, "gpus": 8, "mfu": 0.45},
    ],
    "bandwidth_gb_per_s": {"intra_node": 100, "inter_node": 10},
}


@pytest.fixture
def cluster(tmp_path) -> dict:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(CALIBRATION))
    return {"flops_per_second": 1.25e14, "gpus_per_node": 8, "calibration": str(path)}


def test_without_a_calibration_time_is_linear_in_gpus_at_the_assumed_rate():
    cluster = {"flops_per_second": 1.25e14, "gpus_per_node": 8, "calibration": None}
    assert timing.compute_seconds(cluster, 1e18, 4, 1e9, 1e9, 1000) == pytest.approx(1e18 / (4 * 1.25e14))
    assert "ASSUMED" in timing.assumption(cluster) and "1.25e+14" in timing.assumption(cluster)


def test_calibrated_mfu_is_interpolated_in_log_parameters(cluster):
    # 1B at 0.5 and 4B at 0.4: 2B lies halfway in log N, so 0.45; beyond the ends, the end values
    assert timing.compute_seconds(cluster, 1e18, 1, 1e9) == pytest.approx(1e18 / (PEAK_TFLOPS * 1e12 * 0.5))
    assert timing.compute_seconds(cluster, 1e18, 1, 2e9) == pytest.approx(1e18 / (PEAK_TFLOPS * 1e12 * 0.45))
    assert timing.compute_seconds(cluster, 1e18, 1, 16e9) == pytest.approx(1e18 / (PEAK_TFLOPS * 1e12 * 0.4))
    assert timing.sustained_flops(cluster, 2e9) == pytest.approx(0.45e14)


def test_a_gpu_count_measured_includes_its_communication(cluster):
    seconds = timing.compute_seconds(cluster, 1e18, 8, 1e9, 1e9, steps=1000)
    assert seconds == pytest.approx(1e18 / (8 * PEAK_TFLOPS * 1e12 * 0.45))


def test_an_unmeasured_gpu_count_adds_fsdp_traffic_at_the_link_bandwidth(cluster):
    # 4 GPUs in a node: the one-GPU MFU, plus per step 3/4 x (2 x 2 bytes x 1e9 + 4 bytes x 1e9) = 6 GB at 100 GB/s
    compute = 1e18 / (4 * PEAK_TFLOPS * 1e12 * 0.5)
    assert timing.compute_seconds(cluster, 1e18, 4, 1e9, 1e9, steps=1000) == pytest.approx(compute + 1000 * 0.06)
    # LoRA-like: the weights gathered, a few trained: 3/4 x 4e9 bytes = 3 GB a step
    assert timing.compute_seconds(cluster, 1e18, 4, 1e9, 0, steps=1000) == pytest.approx(compute + 1000 * 0.03)
    # 16 GPUs on 2 nodes: the inter-node link, 15/16 x 8e9 bytes at 10 GB/s
    compute = 1e18 / (16 * PEAK_TFLOPS * 1e12 * 0.5)
    assert timing.compute_seconds(cluster, 1e18, 16, 1e9, 1e9, steps=10) == pytest.approx(compute + 10 * 0.75)


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c.pop("peak_tflops"), "peak_tflops"),
        (lambda c: c.update(mfu=[{"parameters": 1e9, "gpus": 2, "mfu": 0.5}]), "one-GPU"),
        (lambda c: c.update(mfu=[{"parameters": 1e9, "gpus": 1, "mfu": 1.5}]), "mfu[0]"),
        (lambda c: c.update(mfu=[{"parameters": 1e9, "gpus": 1}]), "mfu[0]"),
    ],
)
def test_a_bad_calibration_file_is_one_line_naming_its_key(tmp_path, change, key):
    data = json.loads(json.dumps(CALIBRATION))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(timing.CalibrationError, match=re.escape(f"cluster.calibration {path}") + ".*" + re.escape(key)):
        timing.load(str(path))


def test_no_bandwidth_for_an_unmeasured_count_is_an_error_not_free_communication(tmp_path):
    path = tmp_path / "no-bandwidth.json"
    path.write_text(json.dumps({k: v for k, v in CALIBRATION.items() if k != "bandwidth_gb_per_s"}))
    cluster = {"flops_per_second": 1.25e14, "gpus_per_node": 8, "calibration": str(path)}
    with pytest.raises(timing.CalibrationError, match="bandwidth_gb_per_s.intra_node"):
        timing.compute_seconds(cluster, 1e18, 4, 1e9, 1e9, steps=10)


def test_the_paper_plan_uses_the_calibration_and_says_so(cluster):
    paper = study_config.load(ROOT / "configs" / "paper.yaml")
    calibrated = {**paper, "cluster": {**paper["cluster"], "calibration": cluster["calibration"]}}
    assumed, measured = (
        sizing.pretrain_job(paper, "1B", 84_000_000_000),
        sizing.pretrain_job(calibrated, "1B", 84_000_000_000),
    )
    # by hand: 6 N T FLOPs, steps of batch x seq_len tokens, on the GPUs the calibrated plan chose
    p, n = paper["pretrain"], sizing.model_parameters(paper, "1B")
    flops, steps = 6 * n * 84e9, math.ceil(84e9 / (p["batch_size"] * p["seq_len"]))
    g = measured.gpus
    mfu = 0.5 + (0.4 - 0.5) * math.log(n / 1e9) / math.log(4)
    expected = flops / (g * PEAK_TFLOPS * 1e12 * (0.45 if g == 8 else mfu))
    if g not in (1, 8):
        expected += steps * (g - 1) / g * 8 * n / (100e9 if g <= 8 else 10e9)
    assert measured.compute_hours == pytest.approx(expected / 3600, rel=1e-6)
    assert assumed.compute_hours == pytest.approx(flops / (assumed.gpus * paper["cluster"]["flops_per_second"]) / 3600)
    assert "ASSUMED" in grid_summary.format_summary(grid_summary.summarize(paper))
    assert "calibrated" in grid_summary.format_summary(grid_summary.summarize(calibrated))
    assert memory.parameters(memory.Shape.of(paper, "1B")) == n
