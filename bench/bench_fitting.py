"""Speed of the analysis on a paper-sized problem (prints figures; no assertions).

Problem: 3 tasks x 3 methods; model axis 5 sizes (1B-16B, 16B held out), pretraining axis 6 token
counts, PET axis 7 sizes (prompt and LoRA), 11 finetuning-data sizes, 3 seeds per condition; an
init grid of 4 values per parameter kind (multiplicative law 4^4 = 256 starts, additive 4^5 = 1024);
1,000 bootstrap resamples.

Prints:
- the wall time of the whole analysis (run_analysis: every fit, bootstrap, table and fits.json) and of
  the figures;
- the multi-start comparison on the same problem: all full-data joint fits of one task and method
  (both laws, both steps) with the batched fitter vs a plain per-start scipy L-BFGS-B loop, with the
  objective values each reaches;
- the bootstrap comparison: 1,000 multiplicative refits as one batch vs one scipy refit per replicate
  (timed on a subset and scaled up);
- stationarity: max |d objective / d theta| over ftscale.fitting.diagnostics' tolerance (above 1: the
  fit is flagged not converged) of every full-data joint fit, batched and loop, and of every replicate.

BLAS threads: pinned to 1 unless OPENBLAS_NUM_THREADS is already set. On a busy 2-core machine a
threaded OpenBLAS makes every scipy L-BFGS-B iteration cost ~2 ms of thread wake-ups (15x slower
loops); the batched analysis is barely affected either way, so pinning is the fair setting for the
per-start loop it is compared with.

Usage: .venv/bin/python bench/bench_fitting.py [--bootstrap 1000] [--loop-replicates 40] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its BLAS

import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import summary as bench_summary  # noqa: E402  (bench/summary.py)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.synthetic_study

import numpy as np  # noqa: E402

from ftscale.analysis import points, procedure, tables  # noqa: E402
from ftscale.figures import paper  # noqa: E402
from ftscale.fitting import diagnostics, laws, solver, statistics  # noqa: E402
from ftscale.plan.grid import AXES  # noqa: E402
from tests.synthetic_study import synthetic_metrics  # noqa: E402

MODEL_SIZES = (1e9, 2e9, 4e9, 8e9, 16e9)
PRETRAIN_TOKENS = (84e9, 105e9, 126e9, 147e9, 167e9, 206e9)
PET_SIZES = {"prompt": (50, 100, 150, 200, 300, 400, 600), "lora": (4, 8, 16, 32, 48, 64, 128)}
FINETUNE_EXAMPLES = (8_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000)
INIT_GRID = {
    "log_scale": [0.0, 2.5, 5.0, 7.5],
    "exponent": [0.0, 0.25, 0.5, 1.0],
    "log_irreducible": [-2.0, -1.0, -0.5, 0.5],
}


def paper_sized_metrics():
    return synthetic_metrics(
        tasks=("wmt14_ende", "wmt19_enzh", "mlsum"),
        model_sizes=MODEL_SIZES,
        pretrain_tokens=PRETRAIN_TOKENS,
        pet_sizes=PET_SIZES,
        finetune_examples=FINETUNE_EXAMPLES,
        seeds=3,
        noise=5e-3,
    )


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def joint_groups(metrics, task, method, options):
    runs = metrics[(metrics.task == task) & (metrics.method == method)]
    means, run_losses = procedure.axis_table(runs, options)
    return {axis: points.fitted_group(m) for axis, m in means.items()}, means, run_losses


def all_joint_fits(groups, options, strategy):
    """Every full-data joint fit of one task and method: both laws, step one and step two."""
    results = {}
    for law in laws.JOINT_LAWS:
        results[law] = solver.fit_joint(
            law,
            groups,
            objective=options["objective"],
            delta=options["huber_delta"],
            init_grid=options["init_grid"],
            strategy=strategy,
        )
    return results


def gradient_ratios(result: solver.Fit, options: dict) -> np.ndarray:
    """diagnostics.gradient_ratio of each data set of a fit (above 1: flagged not converged)."""
    tolerance = options["diagnostics"]["gradient_tolerance"]
    return np.array(
        [
            diagnostics.gradient_ratio(g, result.n_points, options["huber_delta"], tolerance)
            for g in np.atleast_2d(result.gradient)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--loop-replicates", type=int, default=40, help="replicates refit one by one for the ratio")
    parser.add_argument("--quick", action="store_true", help="one task and method, 4 resamples (the tests' run)")
    args = parser.parse_args()
    metrics = paper_sized_metrics()
    if args.quick:
        args.bootstrap, args.loop_replicates = 4, 2
        metrics = metrics[(metrics.task == "wmt14_ende") & (metrics.method == "lora")]
    options = procedure.resolve_options(
        {"init_grid": INIT_GRID, "bootstrap": args.bootstrap, "heldout": {"model": ["m5"]}}
    )
    starts = {law: len(solver.grid_starts(laws.parameter_names(law), INIT_GRID)) for law in laws.LAWS}
    print(
        f"paper-sized problem: {len(metrics)} runs, {metrics.groupby(['task', 'method']).ngroups} task x method, "
        f"starts per fit {starts}, {args.bootstrap} bootstrap resamples, {os.cpu_count()} CPU cores, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}"
    )

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results, analysis_s = timed(tables.run_analysis, metrics, None, options, Path(tmp) / "fits")
        _, figures_s = timed(paper.draw_figures, metrics, None, results, Path(tmp) / "figures")
        _, no_bootstrap_s = timed(tables.run_analysis, metrics, None, options | {"bootstrap": 0}, Path(tmp) / "b0")
    print(
        f"whole analysis (run_analysis): {analysis_s:.1f} s  [without bootstrap {no_bootstrap_s:.1f} s, so "
        f"bootstrap ~{analysis_s - no_bootstrap_s:.1f} s]   figures: {figures_s:.1f} s   (target: analysis < 60 s)"
    )
    params = results["params"].set_index(["task", "axis", "method"])
    print(
        "  recovered alpha (truth model 0.2, pretrain 0.08, pet 0.002): "
        + ", ".join(f"{axis} {params.xs(axis, level='axis')['alpha'].mean():.4f}" for axis in AXES)
    )

    # -- multi-start: batched vs a plain per-start scipy loop, same problem
    groups, means, run_losses = joint_groups(metrics, "wmt14_ende", "lora", options)
    batched, batched_s = timed(all_joint_fits, groups, options, "batched")
    looped, loop_s = timed(all_joint_fits, groups, options, "loop")
    print(
        f"multi-start, all full-data joint fits of wmt14_ende/lora (2 laws x (step one + 3 axes)): "
        f"batched {batched_s:.2f} s, per-start scipy loop {loop_s:.1f} s -> {loop_s / batched_s:.0f}x faster"
    )
    full_ratios = []
    for law in laws.JOINT_LAWS:
        for step in batched[law]:
            b, p = batched[law][step].objective_value, looped[law][step].objective_value
            ratio, loop_ratio = (gradient_ratios(r[law][step], options)[0] for r in (batched, looped))
            full_ratios.append(ratio)
            print(
                f"    {law:>14} {step:>9}: {batched[law][step].n_starts:>4} starts, objective batched {b:.6e} "
                f"loop {p:.6e} (batched - loop) / loop = {(b - p) / p:+.1e}; max|gradient| / tolerance "
                f"batched {ratio:.1e} loop {loop_ratio:.1e}"
            )

    # -- bootstrap: one batch of replicates vs one scipy refit per replicate (warm start for both)
    full = batched["multiplicative"]
    replicates = statistics.resample_condition_means(run_losses, args.bootstrap, np.random.default_rng(0))
    boot_groups = {
        axis: points.fitted_group(m, loss=replicates[:, m.loc[~m["heldout"], "condition"].to_numpy(int)])
        for axis, m in means.items()
    }
    kw = {"objective": options["objective"], "delta": options["huber_delta"]}
    batch, batch_s = timed(solver.fit_joint, "multiplicative", boot_groups, warm=solver.warm_starts(full), **kw)
    subset = {
        axis: laws.Group(g.finetune_examples, g.loss[: args.loop_replicates], g.x) for axis, g in boot_groups.items()
    }
    looped_boot, loop_boot_s = timed(
        solver.fit_joint, "multiplicative", subset, warm=solver.warm_starts(full), strategy="loop", **kw
    )
    per_replicate = loop_boot_s / args.loop_replicates
    print(
        f"bootstrap, {args.bootstrap} multiplicative joint refits of wmt14_ende/lora: batched {batch_s:.2f} s, "
        f"per-replicate scipy loop ~{per_replicate * args.bootstrap:.1f} s (timed on {args.loop_replicates}) "
        f"-> {per_replicate * args.bootstrap / batch_s:.0f}x faster"
    )
    unconverged = 0
    for step in batch:
        b = batch[step].objective_value[: args.loop_replicates]
        p = looped_boot[step].objective_value
        ratios = gradient_ratios(batch[step], options)
        unconverged += int(np.sum(~(ratios <= 1)))
        print(
            f"    {step:>9}: (batched - loop) / loop over {args.loop_replicates} replicates: "
            f"min {np.min((b - p) / p):+.1e}, max {np.max((b - p) / p):+.1e}; of {len(ratios)} batched "
            f"replicates {np.sum(~(ratios <= 1))} above the gradient tolerance (max|gradient| / tolerance "
            f"median {np.median(ratios):.1e}, max {np.max(ratios):.1e})"
        )
    # step two inherits step one's beta and e (flat directions): compare it with the same fixed values
    fixed = {
        "beta": batch["step_one"].params[0]["beta"][: args.loop_replicates],
        "e": batch["step_one"].params[0]["e"][: args.loop_replicates],
    }
    gaps = []
    for axis, group in subset.items():
        loop = solver.fit("multiplicative", [group], fixed=fixed, starts=full[axis].start, strategy="loop", **kw)
        gaps.append((batch[axis].objective_value[: args.loop_replicates] - loop.objective_value) / loop.objective_value)
    print(
        f"    step two with the batched step one's beta and e: (batched - loop) / loop min {np.min(gaps):+.1e}, "
        f"max {np.max(gaps):+.1e}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (timings above are wall clock on a shared machine)")
    measured = {
        "fitting_paper_analysis_s": analysis_s,
        "fitting_paper_figures_s": figures_s,
        "fitting_multistart_speedup_vs_scipy_loop": loop_s / batched_s,
        "fitting_bootstrap_speedup_vs_scipy_loop": per_replicate * args.bootstrap / batch_s,
        "fitting_joint_max_gradient_over_tolerance": float(np.max(full_ratios)),
        "fitting_bootstrap_unconverged_fits": unconverged,
    }
    print(f"merged into {bench_summary.merge(measured)}")


if __name__ == "__main__":
    main()
