"""From the tidy runs table (metrics.csv) to the paper's fits per task, factor and method.

Procedure (STUDY.md, "Scaling laws and fitting"), on the points of ftscale.analysis.points (usable
runs, each axis's points, what is held out, condition means over seeds):
- the bootstrap resamples each condition's runs with replacement (the design stays fixed, so all
  replicates of a fit are solved as one batch); the single-variable fits, one model each, leave out
  only held-out Df;
- joint laws (multiplicative and additive): for each task and method, beta and E come from one joint
  fit over the model-size and pretraining-data points, then are held fixed while each axis (model,
  pretrain, pet) is refit; an axis with fewer than two fitted X values or Df values is skipped with
  a note;
- single-variable fits L(Df) = A/Df^beta + E per task, method and model (the model-size axis).

`analyze` returns every fit as one dict, each joint and single-variable fit with its diagnostics
(ftscale.fitting.diagnostics); ftscale.analysis.validation adds leave-one-out errors and the laws'
paired comparison; ftscale.analysis.comparison compares the methods' fits (critical sizes, which
method); ftscale.analysis.tables turns the dict into the tables and their files (`run_analysis`).
A little past 300 lines: the fits of one task and method (single-variable, joint, bootstrap,
diagnostics, the Fig 10 law) share the options and notes threaded through them here.
"""

from __future__ import annotations

import copy
import logging
import sys
import zlib

import numpy as np
import pandas as pd

from ftscale.analysis import comparison, validation
from ftscale.analysis.points import (
    CONDITION,
    GENERATION_METRICS,
    axis_points,
    condition_means,
    deltas,
    fitted_group,
    points_record,
    usable_runs,
)
from ftscale.fitting import diagnostics, laws, selection, solver, statistics
from ftscale.fitting.laws import JOINT_LAWS
from ftscale.fitting.statistics import INTERVAL_LEVEL
from ftscale.plan.grid import AXES  # one list of axes for the whole package

log = logging.getLogger("ftscale.analysis.procedure")


def resolve_options(options: dict | None) -> dict:
    """The workflow config's `analysis:` options, each key not given (or None) at the schema's
    default (ftscale.config), init_grid's kinds not given at solver.DEFAULT_INIT_GRID; a bad or
    unknown key is a ValueError naming it (ftscale.config.ConfigError)."""
    from ftscale import config as study_config

    options = copy.deepcopy({k: v for k, v in (options or {}).items() if v is not None})
    resolved = study_config.section_with_defaults("analysis", options)
    resolved["init_grid"] = copy.deepcopy(solver.DEFAULT_INIT_GRID) | resolved.get("init_grid", {})
    return resolved


def ensure_log_output() -> None:
    """Inside a workflow job nothing configures logging; the notes should still reach the job's log."""
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    log.info(message)


def _rng(seed: int, *names: str) -> np.random.Generator:
    """One stream per (task, method): adding a task leaves the others' intervals unchanged."""
    return np.random.default_rng([int(seed), *(zlib.crc32(n.encode()) for n in names)])


# ------------------------------------------------------------------------------------ fits


def _fit_kwargs(options: dict) -> dict:
    return {
        "objective": options["objective"],
        "delta": float(options["huber_delta"]),
        "init_grid": options["init_grid"],
    }


def _single_variable(task, method, model_means, options, notes) -> list[dict]:
    """Fig 1: L(Df) = A/Df^beta + E for each model of the model-size axis."""
    rows = []
    for model, means in model_means.groupby("model", sort=False):
        # a held-out model is still fitted here: in Fig 1 only held-out Df values are extrapolation
        means = means.assign(heldout=means["heldout_df"])
        try:
            result = solver.fit("power", [fitted_group(means, with_x=False)], **_fit_kwargs(options))
        except laws.FitError as error:
            _note(notes, f"skipped single-variable fit {task}/{method}/{model}: {error}")
            continue
        params = result.params[0]
        rows.append(
            {
                "task": task,
                "method": method,
                "model": model,
                "params": float(means["x"].iloc[0]),
                **{k: params[k] for k in ("A", "beta", "E")},
                **deltas("power", params, means, with_x=False),
                "points": points_record(means),
                "diagnostics": _diagnose(result, None, params, options),
            }
        )
    return rows


def axis_table(runs: pd.DataFrame, options: dict) -> tuple[dict[str, pd.DataFrame], list[np.ndarray]]:
    """Per axis, the condition means (with a `condition` index), and each condition's run losses."""
    conditions = runs.groupby(CONDITION, dropna=False, sort=True).ngroup()
    runs = runs.assign(condition=conditions.to_numpy())
    run_losses = [g["test_loss"].to_numpy(float) for _, g in runs.groupby("condition", sort=True)]
    means = {}
    for axis in AXES:
        points = axis_points(runs, axis, options["heldout"])
        if len(points):
            means[axis] = condition_means(points)
    return means, run_losses


def _eligible(task, method, means: dict[str, pd.DataFrame], notes) -> dict[str, pd.DataFrame]:
    kept = {}
    for axis, m in means.items():
        fitted = m[~m["heldout"]]
        if m["x"].isna().all():
            continue  # e.g. the PET axis of FMT: not an axis of it
        n_x, n_df = fitted["x"].nunique(), fitted["finetune_examples"].nunique()
        if n_x < 2 or n_df < 2:
            _note(
                notes,
                f"skipped {task}/{method}/{axis}: {n_x} fitted X value(s) and {n_df} Df value(s); "
                "a joint fit needs two of each",
            )
            continue
        kept[axis] = m
    return kept


def _joint(task, method, means, run_losses, options, notes) -> list[dict]:
    """Both joint laws for one task and method, with the bootstrap for the multiplicative one."""
    rows = []
    kw = _fit_kwargs(options)
    for law in JOINT_LAWS:
        groups = {axis: fitted_group(m) for axis, m in means.items()}
        try:
            result = solver.fit_joint(law, groups, **kw)
        except laws.FitError as error:
            _note(notes, f"skipped {law} fits of {task}/{method}: {error}")
            continue
        samples = {}
        if law == "multiplicative" and options["bootstrap"] > 0:
            samples = _bootstrap(task, method, means, run_losses, result, options, notes)
        shared = [a for a in ("model", "pretrain") if a in means]
        for axis, m in means.items():
            params = result[axis].params[0]
            row = {
                "task": task,
                "method": method,
                "axis": axis,
                "law": law,
                "params": params,
                "shared_from": shared,
                **deltas(law, params, m),
                "n_starts": result[axis].n_starts,
                "x_values": sorted(m["x"].unique().tolist()),
                "points": points_record(m),
            }
            if axis in samples:
                row["bootstrap"] = {k: samples[axis][k].tolist() for k in ("A", "alpha", "beta", "E", "a")}
                row["intervals"] = {
                    k: statistics.percentile_interval(samples[axis][k], INTERVAL_LEVEL)
                    for k in ("A", "alpha", "beta", "E")
                }
            row["diagnostics"] = _diagnose(result[axis], result.get("step_one"), params, options, row.get("intervals"))
            rows.append(row)
    return rows


def _diagnose(fit, step_one, params, options, intervals=None) -> dict:
    """ftscale.fitting.diagnostics of one fit; a joint fit converged only if its step one did too."""
    kw = {"limits": options["diagnostics"], "delta": float(options["huber_delta"]), "intervals": intervals}
    result = diagnostics.diagnose(params, gradient=fit.gradient, n_points=fit.n_points, **kw)
    if step_one is not None and result["converged"]:
        shared = diagnostics.converged(
            step_one.gradient, step_one.n_points, kw["delta"], kw["limits"]["gradient_tolerance"]
        )
        result |= {"converged": shared, "flagged": result["flagged"] or shared is False}
    return result


def _bootstrap(task, method, means, run_losses, result, options, notes) -> dict[str, dict]:
    """Multiplicative joint procedure on `bootstrap` replicates at once, started from the full fit."""
    rng = _rng(options["seed"], task, method)
    replicates = statistics.resample_condition_means(run_losses, int(options["bootstrap"]), rng)
    groups = {
        axis: fitted_group(m, loss=replicates[:, m.loc[~m["heldout"], "condition"].to_numpy(int)])
        for axis, m in means.items()
    }
    try:
        boot = solver.fit_joint("multiplicative", groups, warm=solver.warm_starts(result), **_fit_kwargs(options))
    except laws.FitError as error:
        _note(notes, f"no bootstrap for {task}/{method}: {error}")
        return {}
    if all(len(r) < 2 for r in run_losses):
        _note(notes, f"{task}/{method}: one run per condition, so the bootstrap intervals have zero width")
    return {axis: boot[axis].params[0] for axis in means}


def _correlations(task, method, means: dict[str, pd.DataFrame]) -> list[dict]:
    rows = []
    for axis, m in means.items():
        for metric in GENERATION_METRICS:
            if metric in m and m[metric].notna().sum() >= 1:
                r, p = statistics.pearson(m["test_loss"], m[metric])
                rows.append(
                    {
                        "task": task,
                        "axis": axis,
                        "method": method,
                        "metric": metric,
                        "r": r,
                        "p": p,
                        "n": int(m[["test_loss", metric]].notna().all(axis=1).sum()),
                    }
                )
    return rows


def _pretraining(pretrain: pd.DataFrame | None, options: dict, notes) -> list[dict]:
    """Fig 10: per family, validation loss vs model size on the full corpus (each model's largest
    token count), with a power law L(N) = A/N^alpha + E where three or more sizes allow it, fitted
    without the models of analysis.heldout.pretraining (`heldout`; delta_h: its error on them)."""
    if pretrain is None or len(pretrain) == 0:
        return []
    if "status" in pretrain:
        pretrain = pretrain[pretrain["status"] == "ok"]
    rows = []
    for family, table in pretrain.groupby("family", sort=True):
        table = table[np.isfinite(pd.to_numeric(table["val_loss"], errors="coerce").astype(float))]
        full = table.loc[table.groupby("model")["pretrain_tokens"].idxmax()].sort_values("params")
        held = full["model"].isin(options["heldout"].get("pretraining", [])).to_numpy()
        row = {
            "family": family,
            "params": full["params"].astype(float).tolist(),
            "val_loss": full["val_loss"].astype(float).tolist(),
            "heldout": held.tolist(),
            "fit": None,
        }
        try:
            # the single-variable law with the model size in place of Df: A / N^alpha + E
            fitted = full[~held]
            result = solver.fit("power", [laws.Group(fitted["params"], fitted["val_loss"])], **_fit_kwargs(options))
            p = result.params[0]
            predicted = laws.predict("power", p, full["params"].to_numpy(float))
            row["fit"] = {
                "A": p["A"],
                "alpha": p["beta"],
                "E": p["E"],
                "delta_h": statistics.mean_absolute_deviation(predicted[held], full["val_loss"].to_numpy(float)[held]),
                "diagnostics": _diagnose(result, None, {"a": p["a"], "alpha": p["beta"], "E": p["E"]}, options),
            }
        except laws.FitError as error:
            _note(notes, f"no pretraining power law for {family}: {error}")
        rows.append(row)
    return rows


def analyze(metrics: pd.DataFrame, options: dict | None = None, pretrain: pd.DataFrame | None = None) -> dict:
    """All fits of a study, as a JSON-ready dict (NaN kept as float NaN here)."""
    options = resolve_options(options)
    notes: list[str] = []
    runs = usable_runs(metrics)
    fits = {
        "options": options,
        "notes": notes,
        "single_variable": [],
        "joint": [],
        "correlation": [],
        "leave_one_out": [],
    }
    means_of, paired = {}, {}
    for (task, method), task_runs in runs.groupby(["task", "method"], sort=True):
        means, run_losses = axis_table(task_runs, options)
        means_of[(task, method)] = means
        if "model" in means:
            fits["single_variable"] += _single_variable(task, method, means["model"], options, notes)
        fits["joint"] += _joint(task, method, _eligible(task, method, means, notes), run_losses, options, notes)
        fits["correlation"] += _correlations(task, method, {a: m for a, m in means.items() if m["x"].notna().any()})
        # leave-one-out errors and the replicates of the laws' paired comparison (ftscale.analysis.validation)
        eligible, rows = (
            _eligible(task, method, means, []),
            [r for r in fits["joint"] if (r["task"], r["method"]) == (task, method)],
        )
        fits["leave_one_out"] += validation.leave_one_out(task, method, eligible, rows, _fit_kwargs(options))
        paired[(task, method)] = validation.paired_heldout(
            eligible,
            run_losses,
            rows,
            int(options["bootstrap"]),
            _rng(options["seed"], task, method),
            _fit_kwargs(options),
        )
    fits["law_comparison"] = validation.law_comparison(paired, fits["joint"])
    fits["critical"] = comparison.critical_sizes(fits["joint"])
    fits["which_method"] = comparison.which_method(
        fits["joint"], means_of, options["which_method"], lambda message: _note(notes, message)
    )
    fits["which_model"] = selection.which_model(
        {key: m["model"] for key, m in means_of.items() if "model" in m},
        law=options["which_model"]["law"],
        auto_tie=float(options["which_model"]["auto_tie"]),
        bootstrap=int(options["bootstrap"]),
        seed=int(options["seed"]),
        notes=notes,
    )
    fits["pretraining"] = _pretraining(pretrain, options, notes)
    return fits
