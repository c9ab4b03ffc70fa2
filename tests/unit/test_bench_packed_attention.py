"""bench/bench_packed_attention.py's quick mode (a tiny decoder) runs end to end, so the bench cannot rot:
both attentions measured under FakeTensorMode and MemTracker, the packed one without the block mask."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_quick_mode_measures_both_attentions():
    import bench_packed_attention

    figures = bench_packed_attention.main(["--quick", "--no-merge"])["packed_attention_gb_quick"]
    sdpa, packed = figures["sdpa"], figures["packed"]
    assert 0 < packed["layer"] < sdpa["layer"] < 1e-2  # MemTracker saw a layer's tensors; the mask is gone
    # the mask: a row's tokens in bytes per token (rows x 64 x 64 in all), in each layer
    assert sdpa["layer"] - packed["layer"] >= figures["rows"] * 64 * 64 / 1e9


def test_a_token_budget_step_measures_within_ten_percent_of_its_plan():
    """The paper's En-De 1B FMT job on its 4 GPUs with a token budget: one real FSDP2 step measured
    (FakeTensorMode, MemTracker) against the planner's memory at the rows it packed (1.177 when the
    plan summed the gradients with the activations of a step of one pass)."""
    import bench_packed_attention

    result = bench_packed_attention.main(["--quick", "--no-merge", "--token-budget", "fmt-1B"])
    assert 0.9 < result["token_budget_planned_over_measured"]["fmt-1B"] < 1.1
