"""Speed of `ftscale analyze` on a paper-sized runs table (prints figures; no assertions).

Table: configs/paper.yaml's whole grid, 3,819 runs (3 tasks x 3 methods, model, pretraining and
PET axes, 3 seeds), losses drawn from the paper's Table 4 laws (tests/synthetic_study.py,
paper_grid_metrics); the config's own analysis options (bootstrap 200, its hold-outs). The command
runs as a user runs it, in a fresh process (imports included), on every core this machine has
(target: at most 60 s on 2 cores). Then, in this process, the share of its parts: the fits
(run_analysis) with selection.which_model alone, and the figures.

BLAS threads: pinned to 1 unless OPENBLAS_NUM_THREADS is already set (see bench_fitting.py: on a busy
2-core machine a threaded OpenBLAS slows every scipy L-BFGS-B iteration).

Usage: .venv/bin/python bench/bench_analyze.py [--quick]
"""

from __future__ import annotations

import os
import sys

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its BLAS

import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import summary as bench_summary  # noqa: E402  (bench/summary.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository: tests.synthetic_study

import yaml  # noqa: E402

from ftscale.analysis import points, procedure, runs_table  # noqa: E402
from ftscale.figures import files  # noqa: E402
from ftscale.fitting import selection  # noqa: E402
from tests.synthetic_study import paper_grid_metrics  # noqa: E402

TARGET_S = 60.0


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    quick = "--quick" in sys.argv[1:]  # one task and method, 4 resamples (the tests' run)
    runs, config = paper_grid_metrics()
    if quick:
        config["analysis"]["bootstrap"] = 4
        first = runs.iloc[0]
        runs = runs[(runs.task == first.task) & (runs.method == first.method)]
    options = config["analysis"]
    print(
        f"paper-sized table: {len(runs)} runs, {runs.groupby(['task', 'method']).ngroups} task x method, "
        f"bootstrap {options['bootstrap']}, {os.cpu_count()} CPU cores, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        table, config_file = Path(tmp) / "runs.csv", Path(tmp) / "config.yaml"
        runs.to_csv(table, index=False)
        config_file.write_text(yaml.safe_dump(config))
        command = [
            sys.executable,
            "-m",
            "ftscale.cli",
            "analyze",
            str(table),
            "--config",
            str(config_file),
            "--out",
            str(Path(tmp) / "out"),
        ]
        done, command_s = timed(subprocess.run, command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"ftscale analyze failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        print(f"ftscale analyze: {command_s:.1f} s (target: at most {TARGET_S:g} s on 2 cores)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, fits_s = timed(runs_table.fit_files, table, None, options, Path(tmp) / "fits")
            _, figures_s = timed(
                files.figure_files, table, None, Path(tmp) / "fits", Path(tmp) / "figures", skip_absent=True
            )
            resolved = procedure.resolve_options(options)
            model_means = {}
            for (task, method), task_runs in points.usable_runs(runs).groupby(["task", "method"], sort=True):
                means, _ = procedure.axis_table(task_runs, resolved)
                model_means[(task, method)] = means["model"]
            _, which_model_s = timed(
                selection.which_model, model_means, bootstrap=int(resolved["bootstrap"]), seed=int(resolved["seed"])
            )
    print(
        f"  in this process: fits and tables {fits_s:.1f} s (of which selection.which_model {which_model_s:.1f} s), "
        f"figures {figures_s:.1f} s"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (wall clock on a shared machine)")
    measured = {
        "analyze_paper_seconds": command_s,
        "analyze_paper_fits_seconds": fits_s,
        "analyze_paper_which_model_seconds": which_model_s,
        "analyze_paper_figures_seconds": figures_s,
    }
    print(f"merged into {bench_summary.merge(measured)}")


if __name__ == "__main__":
    main()
