"""The planned peak of a training step (ftscale.plan.memory.DeviceMemory.total) against the step itself
at tiny shapes: the project's model and step under FakeTensorMode and torch's MemTracker
(bench/bench_memory.measure, as at the paper's shapes). The peak is the larger of the last
micro-batch's backward and the optimizer's step, not their sum: backward frees each layer's
activations as it makes that layer's gradients, and a step of one pass has none before it.

8 layers, model dim 128, FFN 512, vocabulary 512; FMT; 2 fake ranks (FSDP2, bf16 parameters) or one
GPU (fp32 weights under bf16 autocast). Summing every term, as the plan did, gave 1.20, 1.25 and
1.12 times the measured peak in the three one-pass cases below (2026-12-03)."""

import sys
from pathlib import Path

import pytest

from ftscale.plan import memory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

SIZE = {"layers": 8, "heads": 4, "head_dim": 32, "ffn_dim": 512, "model_dim": 128}
VOCAB = 512


@pytest.mark.parametrize(
    "gpus, batch, micro, source, target",
    [
        (2, 8, 4, 40, 40),  # one pass, activations larger than the gradients
        (2, 4, 2, 8, 8),  # one pass, gradients larger than the activations: the step's phase
        (2, 8, 2, 40, 40),  # two passes: the first's gradients live through the second's backward
        (1, 8, 8, 40, 40),  # one GPU, one pass: the bf16 copies freed with the activations
    ],
)
def test_the_planned_step_peak_is_the_measured_one(gpus, batch, micro, source, target):
    import bench_memory

    job = bench_memory.Job("fmt-tiny", "tiny", SIZE, VOCAB, "fmt", None, gpus, micro, batch, source, target)
    measured = bench_memory.measure(job)
    work = memory.Workload(
        memory.Shape(**SIZE, vocab=VOCAB), "fmt", None, True, tokens=source + target + 3, logit_tokens=target + 1
    )
    planned = memory.device_memory(work, micro, gpus, on_gpu=True, passes=batch // gpus // micro)
    assert 0.9 < (planned.total - planned.context) / measured < 1.1
