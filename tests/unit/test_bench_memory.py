"""bench/bench_memory.py's quick mode (tiny shapes) runs end to end, so the bench cannot rot: the plan's
jobs, the real FSDP2 step (2 fake ranks) and the one-GPU evaluation under FakeTensorMode and MemTracker."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_quick_mode_measures_a_sharded_step_and_an_evaluation():
    import bench_memory

    result = bench_memory.main(["--quick", "--no-merge", "--kinds", "fmt-16B", "evaluate-16B"])
    assert set(result["ratios"]) == {"fmt-16B", "evaluate-16B"}
    # a tiny model's peak is a few MB: the step ran and MemTracker saw its tensors
    assert all(1e5 < measured < 1e9 for measured in result["measured"].values())
    assert all(0.5 < ratio < 2 for ratio in result["ratios"].values())
