"""How fast the toy's synthetic generator writes a task (prints figures, merges them into
results/bench/summary.json; no assertions). It was a wall-clock assertion (< 10 s) in
tests/unit/test_synthetic.py; a speed figure belongs here, where a busy machine cannot fail a test.

- synthetic_20k_sentences_s: `translation_pairs("en", "de", 10000, 0)` (10k meanings, 20k
  sentences), median of --repeats. Target: under 10 s on a 2-core machine.

Usage: .venv/bin/python bench/bench_synthetic.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from ftscale.data import synthetic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="once (the tests' run)")
    args = parser.parse_args()
    args.repeats = 1 if args.quick else args.repeats
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        synthetic.translation_pairs("en", "de", 10000, 0)
        seconds.append(time.perf_counter() - start)
    figure = statistics.median(seconds)
    print(
        f"synthetic generator: 20k sentences (10k en-de meanings) in {figure:.2f} s "
        f"(median of {args.repeats}; target < 10 s)"
    )
    print(f"merged into {bench_summary.merge({'synthetic_20k_sentences_s': round(figure, 3)})}")


if __name__ == "__main__":
    main()
