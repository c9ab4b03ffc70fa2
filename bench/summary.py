"""results/bench/summary.json: every bench merges its figures into it, beside the others'."""

import json
from pathlib import Path

SUMMARY = Path(__file__).resolve().parents[1] / "results" / "bench" / "summary.json"


def merge(figures: dict) -> Path:
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
    SUMMARY.write_text(json.dumps(earlier | figures, indent=1))
    return SUMMARY
