"""Snakemake's start-up on this workflow beside a bare Snakefile of the same job count (prints figures
and merges them into results/bench/summary.json; no assertions). Targets on 2 cores: the paper dry run
at most 20 s, the toy's no-op at most 5 s.

- paper_dry_run: `snakemake -n --quiet rules --configfile configs/paper.yaml` in a fresh directory;
- toy_noop: `snakemake --cores 2` on a built toy study (config.yaml) with nothing left to do, and
  toy_noop_ftscale_run_s / _cpu_s: the same through `ftscale run` (what `make run` runs);
- slurm_probe: `snakemake --version` as installed beside Snakemake as `ftscale run` starts it.

Snakemake here is Snakemake as `ftscale run` starts it (python -m ftscale.runtime.internals.snakemake):
without the SLURM executor plugin's import-time `scontrol show config`, which Snakemake's command
line reaches on every run, local ones too, and which waits up to 10 s where a SLURM client is
installed but no controller answers; slurm_probe_plain_s - slurm_probe_ours_s is what that costs on
this machine now. The bare Snakefile is generated: one rule of as many jobs (each touching a file)
and `all`. The two run in turn, `--repeats` times, so a loaded machine slows both alike: each figure
is a median of the wall seconds and of the CPU seconds (user + system of snakemake and its
children), and the ratio ours / bare says what the workflow's own planning, input and params
functions add.

Usage: .venv/bin/python bench/bench_startup.py [--repeats 3] [--study DIR] [--skip-noop] [--quick] [--no-merge]
  --study DIR: a built toy study (bench/run.py --keep DIR) for toy_noop; without it the toy is built
  first in a temporary directory (minutes). --quick: the toy config's dry run only, once, not merged
  (tests/unit/test_bench_startup.py).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
# Snakemake as `ftscale run` starts it; PLAIN: the console script, with the SLURM plugin's probe
SNAKEMAKE = [sys.executable, "-m", "ftscale.runtime.internals.snakemake"]
PLAIN_SNAKEMAKE = [str(Path(sys.executable).parent / "snakemake")]
FTSCALE_RUN = [sys.executable, "-m", "ftscale.cli", "run"]
BARE = """rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))

rule make:
    output: "out/{{i}}.txt"
    run:
        open(output[0], "w").close()
"""


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process tree, stdout) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.stdout + done.stderr


def job_total(output: str) -> int:
    """The total of a run's "Job stats" table."""
    match = re.search(r"^total\s+(\d+)", output, re.MULTILINE)
    if not match:
        raise ValueError(f"no job total in snakemake's output:\n{output[-2000:]}")
    return int(match.group(1))


def bare_snakefile(directory: Path, jobs: int) -> Path:
    """A Snakefile of `jobs` jobs (jobs - 1 of rule make, and all) in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Snakefile").write_text(BARE.format(jobs=jobs - 1))
    return directory / "Snakefile"


def compare(name: str, ours: list[str], bare: list[str], workdirs: tuple[Path, Path], repeats: int, first=None):
    """Median wall and CPU seconds of ours and bare, run in turn, and the job count they share;
    `first`: our first run, already timed."""
    runs = {"ours": [first] if first else [], "bare": []}
    for _ in range(repeats):
        for side, command, cwd in (("ours", ours, workdirs[0]), ("bare", bare, workdirs[1])):
            if len(runs[side]) < repeats:
                runs[side].append(timed(command, cwd))
    jobs = {side: job_total(runs[side][0][2]) for side in runs} if "-n" in ours else {}
    figures = {f"{name}_jobs": jobs.get("ours")} if jobs else {}
    for side in runs:
        figures[f"{name}_{side}_s"] = statistics.median(wall for wall, _, _ in runs[side])
        figures[f"{name}_{side}_cpu_s"] = statistics.median(cpu for _, cpu, _ in runs[side])
    figures[f"{name}_ratio"] = figures[f"{name}_ours_s"] / figures[f"{name}_bare_s"]
    figures[f"{name}_cpu_ratio"] = figures[f"{name}_ours_cpu_s"] / figures[f"{name}_bare_cpu_s"]
    if jobs and jobs["ours"] != jobs["bare"]:
        raise RuntimeError(f"{name}: the bare Snakefile planned {jobs['bare']} jobs, ours {jobs['ours']}")
    return figures


def dry_run(name: str, config: Path, scratch: Path, repeats: int) -> dict:
    """Our dry run of `config` in a fresh directory beside the bare Snakefile's of as many jobs."""
    ours = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-n", "--cores", "1", "--quiet", "rules"]
    ours += ["--configfile", str(config)]
    (scratch / "ours").mkdir()
    first = timed(ours, scratch / "ours")
    bare_file = bare_snakefile(scratch / "bare", job_total(first[2]))
    bare = [*SNAKEMAKE, "-s", str(bare_file), "-n", "--cores", "1", "--quiet", "rules"]
    return compare(name, ours, bare, (scratch / "ours", scratch / "bare"), repeats, first)


def noop(study: Path | None, scratch: Path, repeats: int) -> dict:
    """The toy's no-op (a built study, else built here) beside the bare Snakefile's, its outputs built,
    and through `ftscale run`."""
    args = ["-s", str(ROOT / "Snakefile"), "--cores", "2", "--configfile", str(ROOT / "config.yaml")]
    ours = [*SNAKEMAKE, *args]
    if study is None:
        study = scratch / "toy"
        study.mkdir()
        print("building the toy study (minutes) ...", flush=True)
        timed(ours, study)
    listing = timed([*ours, "-n", "--forceall", "--quiet", "rules"], study)[2]
    bare = [*SNAKEMAKE, "-s", str(bare_snakefile(scratch / "bare_noop", job_total(listing))), "--cores", "2"]
    timed(bare, scratch / "bare_noop")  # build its outputs: the runs below have nothing to do
    figures = compare("toy_noop", ours, bare, (study, scratch / "bare_noop"), repeats)
    if "Nothing to be done" not in timed(ours, study)[2]:
        raise RuntimeError(f"{study}: the toy study is not finished (or not up to date): no no-op to time")
    through_run = [timed([*FTSCALE_RUN, *args], study) for _ in range(repeats)]
    figures["toy_noop_ftscale_run_s"] = statistics.median(wall for wall, _, _ in through_run)
    figures["toy_noop_ftscale_run_cpu_s"] = statistics.median(cpu for _, cpu, _ in through_run)
    return {"toy_noop_jobs": job_total(listing)} | figures


def slurm_probe(scratch: Path, repeats: int) -> dict:
    """`snakemake --version`, the console script and as `ftscale run` starts it, in turn."""
    runs = {"plain": [], "ours": []}
    for _ in range(repeats):
        for side, command in (("plain", PLAIN_SNAKEMAKE), ("ours", SNAKEMAKE)):
            runs[side].append(timed([*command, "--version"], scratch)[0])
    return {f"slurm_probe_{side}_s": statistics.median(walls) for side, walls in runs.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--study", type=Path, help="a built toy study for the no-op (bench/run.py --keep DIR)")
    parser.add_argument("--quick", action="store_true", help="the toy's dry run only, once, not merged")
    parser.add_argument("--no-merge", action="store_true", help="print only")
    parser.add_argument("--skip-noop", action="store_true", help="the paper dry run only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.quick:
            figures = dry_run("toy_dry_run", ROOT / "config.yaml", scratch, 1) | slurm_probe(scratch, 1)
        else:
            figures = dry_run("paper_dry_run", ROOT / "configs" / "paper.yaml", scratch, args.repeats)
            if not args.skip_noop:
                figures |= noop(args.study, scratch, args.repeats)
            figures |= slurm_probe(scratch, args.repeats)
    for key, value in figures.items():
        print(f"{key:28s} {value:9.2f}" if isinstance(value, float) else f"{key:28s} {value:>9}")
    print(f"load average: {os.getloadavg()[0]:.1f} (figures: median of {1 if args.quick else args.repeats})")
    if not (args.quick or args.no_merge):
        print(f"merged into {bench_summary.merge(figures)}")
    return figures


if __name__ == "__main__":
    main()
