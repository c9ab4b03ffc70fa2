"""How fast a user previews the paper's grid (prints figures and merges them into
results/bench/summary.json; no assertions). Target: under 20 s on a 2-core machine.

- paper_dry_run_s: `snakemake -n --quiet rules --configfile configs/paper.yaml` (the job counts);
- paper_dry_run_listing_s: the same dry run printing every job (`snakemake -n`);
- paper_grid_summary_s: `ftscale grid configs/paper.yaml` (jobs, FLOPs, GPU-hours).

Each in a fresh scratch directory (no .snakemake metadata), median of --repeats.

Usage: .venv/bin/python bench/bench_grid.py [--repeats N] [--skip-listing] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAPER = ROOT / "configs" / "paper.yaml"


def timed(command, repeats: int) -> float:
    """Median wall time of command(scratch directory), run in a fresh scratch directory each time."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            subprocess.run(command(scratch), check=True, capture_output=True, cwd=scratch)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-listing", action="store_true", help="skip the dry run that prints every job")
    parser.add_argument("--quick", action="store_true", help="once each, no listing (the tests' run)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.skip_listing = 1, True
    snakemake = [
        str(BIN / "snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(PAPER),
    ]
    figures = {
        "paper_dry_run_s": timed(lambda scratch: snakemake + ["--directory", scratch, "--quiet", "rules"], args.repeats)
    }
    if not args.skip_listing:
        figures["paper_dry_run_listing_s"] = timed(lambda scratch: snakemake + ["--directory", scratch], 1)
    figures["paper_grid_summary_s"] = timed(
        lambda scratch: [str(BIN / "ftscale"), "grid", str(PAPER), "--json", os.devnull], args.repeats
    )
    for key, value in figures.items():
        print(f"{key:26s} {value:7.1f} s   (target < 20 s)")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"merged into {bench_summary.merge(figures)}")


if __name__ == "__main__":
    main()
