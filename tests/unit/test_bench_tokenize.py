"""bench/bench_tokenize.py's quick mode (1 and 2 MB) runs end to end, so the bench cannot rot: both
streamed stages in fresh processes, their peak RSS and token counts (no timing assertions)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_quick_mode_tokenizes_both_stages_and_reports_their_peaks():
    import bench_tokenize

    result = bench_tokenize.main(["--quick", "--no-merge"])
    for stage in ("pretrain", "task"):
        one, two = (result["counts"][stage][size] for size in ("1", "2"))
        assert 0 < one and abs(two - 2 * one) < 0.01 * two  # twice the corpus, twice the tokens
        assert all(20 < peak < 2000 for peak in result["peak_rss_mb"][stage].values())
        assert all(speed > 0 for speed in result["mb_per_cpu_s"][stage].values())
