"""The SLURM test study (tests/configs/slurm.yaml) through the local one-node SLURM cluster, next to
the same study run locally, in one run. Prints and merges into results/bench/summary.json:

- slurm_local_s / slurm_cluster_s: wall time of the study run locally and through sbatch;
- slurm_jobs: SLURM jobs submitted (group jobs count once), snakemake_jobs: jobs Snakemake ran;
- slurm_overhead_per_job_s: (cluster - local) / SLURM jobs, the scheduler's cost per allocation.

The local run uses the warm worker (no import per job) and both cores; through SLURM, every
allocation starts Snakemake and imports torch anew, so the overhead includes that start-up.
Needs root (tests/slurm/local-cluster.sh starts the cluster); elsewhere it says so and exits 0.

Usage: .venv/bin/python bench/bench_slurm.py [--quick]

--quick (the tests' run) sends one job, the study's first (QUICK_UNTIL), through SLURM and nothing
locally: the bench's own code path, start to merge, in a minute. The whole study through SLURM, and
its results against a local run's, is tests/slurm/test_slurm.py's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
CONFIG = ROOT / "tests" / "configs" / "slurm.yaml"
PROFILE = ROOT / "tests" / "slurm" / "profile"
QUICK_UNTIL = "pretrain_corpus"  # --quick's one job: the first of the study, with no input


def timed_study(workdir: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--quiet",
            *args,
            "--configfile",
            str(CONFIG),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    started = subprocess.run(
        ["bash", str(ROOT / "tests" / "slurm" / "local-cluster.sh"), "start"], capture_output=True, text=True
    )
    if started.returncode != 0:
        print(f"bench_slurm: no local SLURM cluster ({started.stderr.strip()}); run as root to measure")
        return
    os.environ["SLURM_CONF"] = "/var/lib/ftscale-slurm/slurm.conf"
    with tempfile.TemporaryDirectory(prefix="ftscale-bench-slurm-") as scratch:
        local, cluster = Path(scratch) / "local", Path(scratch) / "slurm"
        figures = {} if quick else {"slurm_local_s": timed_study(local, "--cores", "2")}
        until = ["--until", QUICK_UNTIL] if quick else []
        figures["slurm_cluster_s"] = timed_study(cluster, "--profile", str(PROFILE), *until)
        queue = subprocess.run(
            ["squeue", "--states=all", "-h", "-o", "%k %Z"], capture_output=True, text=True, check=True
        ).stdout
        comments = [line.split()[0] for line in queue.splitlines() if line.endswith(str(cluster))]
        benchmarks = list((local / "results" / "slurm" / "benchmarks").rglob("*.tsv"))
    figures["slurm_jobs"] = len(comments)
    if not quick:
        figures["snakemake_jobs"] = len(benchmarks)
        figures["slurm_overhead_per_job_s"] = (figures["slurm_cluster_s"] - figures["slurm_local_s"]) / len(comments)
    for key, value in figures.items():
        print(f"{key:28s} {value:10.1f}" if isinstance(value, float) else f"{key:28s} {value:10d}")

    print(f"merged into {bench_summary.merge(figures)}")


if __name__ == "__main__":
    main()
