"""Speed figures of the workflow (printed and written to results/bench/summary.json; no assertions).

- toy_cold_s / toy_noop_s: the study end to end from nothing, then a rerun with nothing to do, each
  through `ftscale run` as `make run` runs it;
- jobs: job count per rule;
- per-job split of finetune and evaluate jobs: wall time (Snakemake's benchmark) vs the work the
  job itself timed, the rest being process start, imports and model/data load;
- naive_import_s: a fresh interpreter importing torch + transformers (Llama) + peft, the cost each
  job would pay without the warm worker.

Usage: .venv/bin/python bench/run.py [--config config.yaml] [--cores 2] [--keep DIR] [--quick]
(--quick: the smallest test study, QUICK_CONFIG)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
FTSCALE_RUN = [sys.executable, "-m", "ftscale.cli", "run"]  # what `make run` runs
# --quick's study: the smallest test study (the tiny one cut to one task and one axis), so that the
# bench's code path runs in a minute; the tiny study end to end is the tests' `tiny_run` fixture
QUICK_CONFIG = ROOT / "tests" / "configs" / "slurm.yaml"


def run_study(workdir: Path, config: Path, cores: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *FTSCALE_RUN,
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            str(cores),
            "--quiet",
            "--configfile",
            str(config),
        ],
        check=True,
    )
    return time.perf_counter() - start


def job_counts(workdir: Path, config: Path) -> dict[str, int]:
    out = subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "-n",
            "--forceall",
            "--configfile",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


def per_job_split(results: Path, rule: str, work_key: str | None) -> dict:
    walls, works = [], []
    for tsv in (results / "benchmarks" / rule).rglob("*.tsv"):
        walls.append(float(tsv.read_text().splitlines()[1].split("\t")[0]))
        if work_key:
            summary = results / rule / tsv.relative_to(results / "benchmarks" / rule).with_suffix("") / "train.json"
            works.append(json.loads(summary.read_text())[work_key])
    split = {"jobs": len(walls), "mean_wall_s": statistics.mean(walls) if walls else None}
    if works:
        split |= {
            "mean_work_s": statistics.mean(works),
            "mean_overhead_s": statistics.mean(walls) - statistics.mean(works),
        }
    return split


def naive_import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from transformers import LlamaForCausalLM; import peft"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--keep", type=Path, help="run in this new directory and keep its results (default: a temporary one)"
    )
    parser.add_argument("--quick", action="store_true", help=f"the tests' run: {QUICK_CONFIG.name}, not the toy")
    args = parser.parse_args()
    if args.quick:
        args.config = QUICK_CONFIG
    study = yaml.safe_load(args.config.read_text())["study"]
    if args.keep and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists; a cold run needs a new directory")
    with tempfile.TemporaryDirectory(prefix="ftscale-bench-") as scratch:
        workdir = args.keep or Path(scratch)
        summary = {"config": str(args.config), "cores": args.cores, "jobs": job_counts(workdir, args.config)}
        summary["toy_cold_s"] = run_study(workdir, args.config, args.cores)
        summary["toy_noop_s"] = run_study(workdir, args.config, args.cores)
        results = workdir / "results" / study
        summary["finetune_job"] = per_job_split(results, "finetune", "train_seconds")
        summary["evaluate_job"] = per_job_split(results, "evaluate", None)
    summary["naive_import_s"] = naive_import_seconds()
    print(json.dumps(summary, indent=1))
    print(f"merged into {bench_summary.merge(summary)}")


if __name__ == "__main__":
    main()
