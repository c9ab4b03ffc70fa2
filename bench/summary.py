"""results/bench/summary.json: every bench merges its figures into it, beside the others'.
A bench's --quick run (the tests run one of each: tests/unit/test_bench_quick.py) measures less, so its
figures go to results/bench/quick.json instead; FTSCALE_BENCH_SUMMARY names another file for either."""

import json
import os
import sys
from pathlib import Path

SUMMARY = Path(__file__).resolve().parents[1] / "results" / "bench" / "summary.json"
QUICK = SUMMARY.with_name("quick.json")


def merge(figures: dict) -> Path:
    summary = Path(os.environ.get("FTSCALE_BENCH_SUMMARY") or (QUICK if "--quick" in sys.argv else SUMMARY))
    summary.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(summary.read_text()) if summary.exists() else {}
    summary.write_text(json.dumps(earlier | figures, indent=1))
    return summary
