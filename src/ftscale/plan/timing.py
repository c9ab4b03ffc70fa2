"""How long a job's compute takes on its GPUs: the planner's time model, calibrated or assumed.

Assumed (no `cluster.calibration`): every GPU sustains `cluster.flops_per_second` whatever the model
and the GPU count, so time is linear in GPUs and communication is free:

    seconds = FLOPs / (gpus x cluster.flops_per_second)

Calibrated (`cluster.calibration`: a JSON file that `make gpu-check` writes, bench/gpu_check.py):
model FLOP utilisation (MFU) measured per (parameters, GPUs) on the cluster's GPU, and the
bandwidth its collectives reached within a node and across nodes:

    seconds = FLOPs / (gpus x peak x MFU(N, gpus)) + steps x exposed communication per step

MFU(N, gpus): measured at that GPU count, interpolated in log N between the measured models (the
end values beyond them); a measurement at this very GPU count includes its communication. Otherwise
the one-GPU MFU, plus FSDP's traffic, which the one-GPU figure lacks: per step, each GPU all-gathers
the bf16 weights twice (forward and backward) and reduce-scatters the fp32 gradients of what trains,

    bytes per GPU and step = (gpus - 1) / gpus x (2 x 2 x N + 4 x N_trained)

at the intra-node bandwidth up to `cluster.gpus_per_node` GPUs, at the inter-node one beyond (an HSDP
job's slowest link), none of it hidden behind compute (an upper bound).

File format (all keys required but `bandwidth_gb_per_s`):
  {"device": "NVIDIA H100 80GB HBM3", "peak_tflops": 989,
   "mfu": [{"parameters": 1.1e9, "gpus": 1, "mfu": 0.41}, ...],
   "bandwidth_gb_per_s": {"intra_node": 180, "inter_node": 20}}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

KEYS = ("device", "peak_tflops", "mfu")


class CalibrationError(ValueError):
    """A calibration file that cannot be used (one line naming the file and the key)."""


@dataclass(frozen=True)
class Calibration:
    device: str
    peak_flops: float  # FLOP/s, dense bf16
    mfu: tuple[tuple[float, int, float], ...]  # (parameters, gpus, MFU), as measured
    intra_node_bytes_per_s: float | None
    inter_node_bytes_per_s: float | None


@lru_cache(maxsize=8)
def load(path: str) -> Calibration:
    """The calibration file at path, checked."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CalibrationError(f"cluster.calibration {path}: cannot be read as JSON ({error})") from None
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise CalibrationError(f"cluster.calibration {path}: no {missing[0]!r} key")
    points = []
    for i, entry in enumerate(data["mfu"]):
        try:
            point = float(entry["parameters"]), int(entry["gpus"]), float(entry["mfu"])
        except (KeyError, TypeError, ValueError):
            raise CalibrationError(
                f"cluster.calibration {path}: mfu[{i}] needs numeric parameters, gpus and mfu"
            ) from None
        if not (point[0] > 0 and point[1] >= 1 and 0 < point[2] <= 1):
            raise CalibrationError(f"cluster.calibration {path}: mfu[{i}] = {entry} is out of range")
        points.append(point)
    if not any(gpus == 1 for _, gpus, _ in points):
        raise CalibrationError(f"cluster.calibration {path}: mfu has no one-GPU measurement")
    bandwidth = data.get("bandwidth_gb_per_s") or {}
    return Calibration(
        device=str(data["device"]),
        peak_flops=float(data["peak_tflops"]) * 1e12,
        mfu=tuple(sorted(points)),
        intra_node_bytes_per_s=bandwidth.get("intra_node") and bandwidth["intra_node"] * 1e9,
        inter_node_bytes_per_s=bandwidth.get("inter_node") and bandwidth["inter_node"] * 1e9,
    )


def calibration(cluster: dict) -> Calibration | None:
    path = cluster.get("calibration")
    return load(str(path)) if path else None


def interpolated_mfu(points: list[tuple[float, float]], parameters: float) -> float:
    """MFU at `parameters`, linear in log(parameters) between the measured (parameters, MFU) points,
    the nearest end's value beyond them."""
    points = sorted(points)
    if parameters <= points[0][0]:
        return points[0][1]
    for (n0, m0), (n1, m1) in zip(points, points[1:]):
        if parameters <= n1:
            return m0 + (m1 - m0) * math.log(parameters / n0) / math.log(n1 / n0)
    return points[-1][1]


def mfu(cal: Calibration, parameters: float, gpus: int) -> tuple[float, bool]:
    """(MFU, whether it was measured at this GPU count, communication included)."""
    at_count = [(n, m) for n, g, m in cal.mfu if g == gpus]
    if at_count:
        return interpolated_mfu(at_count, parameters), True
    return interpolated_mfu([(n, m) for n, g, m in cal.mfu if g == 1], parameters), gpus == 1


def communication_bytes(parameters: float, trained_parameters: float, gpus: int) -> float:
    """Bytes each GPU sends per optimizer step under FSDP: two bf16 all-gathers of the weights, one
    fp32 reduce-scatter of the trained gradients, each moving (gpus - 1) / gpus of the whole."""
    if gpus <= 1:
        return 0.0
    return (gpus - 1) / gpus * (2 * 2 * parameters + 4 * trained_parameters)


def compute_seconds(
    cluster: dict, flops: float, gpus: int, parameters: float = 0.0, trained_parameters: float = 0.0, steps: int = 0
) -> float:
    """Wall seconds of a job's compute on its GPUs (one device on the CPU), by the module's model."""
    gpus = max(gpus, 1)
    cal = calibration(cluster)
    if cal is None:
        return flops / (gpus * cluster["flops_per_second"])
    utilisation, measured_here = mfu(cal, parameters, gpus)
    seconds = flops / (gpus * cal.peak_flops * utilisation)
    if not measured_here:
        bandwidth = cal.intra_node_bytes_per_s if gpus <= cluster["gpus_per_node"] else cal.inter_node_bytes_per_s
        if not bandwidth:
            link = "intra_node" if gpus <= cluster["gpus_per_node"] else "inter_node"
            raise CalibrationError(
                f"cluster.calibration {cluster['calibration']}: no MFU measured on {gpus} GPUs and no "
                f"bandwidth_gb_per_s.{link} to add their communication"
            )
        seconds += steps * communication_bytes(parameters, trained_parameters, gpus) / bandwidth
    return seconds


def sustained_flops(cluster: dict, parameters: float) -> float:
    """FLOP/s of one GPU on a model of this size: the calibrated one-GPU figure, else the assumption."""
    cal = calibration(cluster)
    return cluster["flops_per_second"] if cal is None else cal.peak_flops * mfu(cal, parameters, 1)[0]


def assumption(cluster: dict) -> str:
    """One line: which time model the plan's hours come from."""
    cal = calibration(cluster)
    if cal is None:
        return (
            f"time model ASSUMED: {cluster['flops_per_second']:.3g} FLOP/s sustained per GPU (cluster.flops_per_second) "
            "for every model and GPU count, linear in GPUs, no communication, every example at its maximum "
            "length; calibrate with `make gpu-check` on the cluster and cluster.calibration"
        )
    sizes = sorted({(n, g) for n, g, _ in cal.mfu})
    return (
        f"time model calibrated ({cluster['calibration']}): {cal.device}, peak {cal.peak_flops / 1e12:g} TFLOP/s, "
        f"MFU measured at (parameters, GPUs) {', '.join(f'({n:.3g}, {g})' for n, g in sizes)}; FSDP traffic "
        "added at the measured bandwidth where a GPU count was not measured"
    )
