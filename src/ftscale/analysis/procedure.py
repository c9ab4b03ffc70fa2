"""From the tidy runs table (metrics.csv) to the paper's tables: fits per task, factor and method.

Procedure (STUDY.md, "Scaling laws and fitting"):
- runs whose status is not `ok` (or whose test loss is not finite) are dropped with a warning that
  names them;
- fits use the mean over seeds of each condition; the per-run rows stay for the bootstrap, which
  resamples each condition's runs with replacement (the design stays fixed, so all replicates of a
  fit are solved as one batch);
- held-out points (per axis, by value; Df values on every axis) are left out of fitting and only
  measure extrapolation (Delta_h); a condition held out on one axis is held out of every joint fit
  (the base model on the full corpus, shared by the model and pretraining axes, when the full corpus
  is a held-out budget); the single-variable fits, one model each, leave out only held-out Df;
- joint laws (multiplicative and additive): for each task and method, beta and E come from one joint
  fit over the model-size and pretraining-data points, then are held fixed while each axis (model,
  pretrain, pet) is refit; an axis with fewer than two fitted X values or Df values is skipped with
  a note;
- single-variable fits L(Df) = A/Df^beta + E per task, method and model (the model-size axis).

`analyze` returns every fit as one dict, each joint and single-variable fit with its diagnostics
(ftscale.fitting.diagnostics); ftscale.analysis.validation adds leave-one-out errors and the laws'
paired comparison; ftscale.analysis.comparison compares the methods' fits (critical sizes, which method), ftscale.analysis.tables turns the dict into the tables and their files
(`tables.run_analysis`).
"""

from __future__ import annotations

import copy
import logging
import sys
import warnings
import zlib

import numpy as np
import pandas as pd

from ftscale.analysis import comparison, validation
from ftscale.fitting import diagnostics, laws, selection, solver, statistics
from ftscale.fitting.laws import JOINT_LAWS
from ftscale.fitting.statistics import INTERVAL_LEVEL
from ftscale.plan.grid import AXES  # one list of axes for the whole package

log = logging.getLogger("ftscale.analysis.procedure")

AXIS_X = {"model": "params", "pretrain": "pretrain_tokens", "pet": "pet_size"}  # X of each axis
AXIS_HELDOUT_COLUMN = {"model": "model", "pretrain": "pretrain_tokens", "pet": "pet_size"}  # what heldout lists
GENERATION_METRICS = ("bleurt", "bleu", "chrf", "rougeL")  # Table 7 and Figs 7-9; bleurt: the paper's, where run
CONDITION = ["model", "params", "pretrain_tokens", "pet_size", "finetune_examples"]  # within a task and method
LARGEST_DF = "largest"  # analysis.heldout.finetune_examples: each task and method's largest Df


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


# ------------------------------------------------------------------------------------ runs and points


def usable_runs(metrics: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished: diverged ones (or any without a finite test loss) are dropped with a
    warning that names them."""
    loss = pd.to_numeric(metrics["test_loss"], errors="coerce").astype(float)
    bad = metrics[(metrics["status"] != "ok") | ~np.isfinite(loss)]
    if len(bad):
        names = ", ".join(
            f"{r.task}/{r.model}/{r.pretrain_tokens}/{r.method}-{r.pet_size}/df{r.finetune_examples}/seed{r.seed}"
            for r in bad.itertuples()
        )
        warnings.warn(f"excluded from fits, not ok: {names}", stacklevel=2)
    kept = metrics.drop(bad.index).copy()
    kept["test_loss"] = loss.drop(bad.index)
    return kept


def as_bool(column: pd.Series) -> pd.Series:
    """An axis_* column as booleans, whether it came as bools or as text from a CSV."""
    if column.dtype == bool:
        return column
    return column.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def axis_points(runs: pd.DataFrame, axis: str, heldout: dict) -> pd.DataFrame:
    """The runs of one axis, with its X as column `x` and the flags `heldout_x` (its X is held out),
    `heldout_df` (its Df is held out), `heldout_shared` (a condition this axis shares with another
    that holds it out, e.g. the base model on the full corpus when the full corpus is a held-out
    budget) and `heldout` (any). `runs`: one task and method, every axis, so a condition held out on
    any axis is held out of every fit."""
    points = _held_on_axis(runs, axis, heldout)
    elsewhere = set()
    for other in AXES:
        if other != axis and f"axis_{other}" in runs:
            on_other = _held_on_axis(runs, other, heldout)
            elsewhere |= set(_condition_keys(on_other[on_other["heldout_x"] | on_other["heldout_df"]]))
    points["heldout_shared"] = _condition_keys(points).isin(elsewhere) & ~(points["heldout_x"] | points["heldout_df"])
    points["heldout"] = points["heldout_x"] | points["heldout_df"] | points["heldout_shared"]
    return points


def _held_on_axis(runs: pd.DataFrame, axis: str, heldout: dict) -> pd.DataFrame:
    """The runs of one axis with `x`, `heldout_x` and `heldout_df` as that axis alone decides them."""
    points = runs[as_bool(runs[f"axis_{axis}"])].copy()
    points["x"] = pd.to_numeric(points[AXIS_X[axis]], errors="coerce").astype(float)
    held = points[AXIS_HELDOUT_COLUMN[axis]].isin(heldout.get(axis, []))
    if axis != "model":  # token counts and PET sizes may come as floats from a CSV
        held |= points["x"].isin([float(v) for v in heldout.get(axis, [])])
    points["heldout_x"] = held
    points["heldout_df"] = heldout_df(points, heldout.get("finetune_examples", []))
    return points


def _condition_keys(runs: pd.DataFrame) -> pd.Series:
    """One text key per condition (task, method and the CONDITION columns), NaN-safe."""
    columns = [c for c in ("task", "method") if c in runs] + CONDITION
    return pd.Series(
        ["|".join(map(str, row)) for row in runs[columns].itertuples(index=False)], runs.index, dtype=object
    )


def heldout_df(runs: pd.DataFrame, rule) -> pd.Series:
    """Which runs have a held-out finetuning-data size: `rule` is a list of Df values, or "largest" for
    the largest Df of each task and method (one rule for every axis, whatever Df sizes a task has)."""
    df = pd.to_numeric(runs["finetune_examples"], errors="coerce")
    if isinstance(rule, str) and rule == LARGEST_DF:
        keys = [c for c in ("task", "method") if c in runs]
        largest = df.groupby([runs[c] for c in keys]).transform("max") if keys else pd.Series(df.max(), runs.index)
        return df == largest
    return df.isin([float(v) for v in rule])


def condition_means(points: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each condition of an axis: x, finetune_examples, heldout, test_loss, the
    generation metrics, n_runs, and `condition` (index into the task's condition list) when present."""
    keys = ["x", "finetune_examples", "heldout"] + [
        c for c in ("heldout_x", "heldout_df", "heldout_shared", "model", "condition") if c in points
    ]
    metrics = {m: (m, "mean") for m in GENERATION_METRICS if m in points}
    return (
        points.groupby(keys, as_index=False, dropna=False)
        .agg(test_loss=("test_loss", "mean"), n_runs=("test_loss", "size"), **metrics)
        .sort_values(["x", "finetune_examples"], kind="stable")
        .reset_index(drop=True)
    )


def fitted_group(means: pd.DataFrame, loss=None, with_x: bool = True) -> laws.Group:
    """The points of condition means not held out, as a fit's Group (`loss`: replicate losses instead)."""
    fitted = means[~means["heldout"]]
    return laws.Group(
        fitted["finetune_examples"].to_numpy(float),
        fitted["test_loss"].to_numpy(float) if loss is None else loss,
        fitted["x"].to_numpy(float) if with_x else None,
    )


def _deltas(law: str, params: dict, means: pd.DataFrame, with_x: bool = True) -> dict:
    predicted = laws.predict(
        law, params, means["finetune_examples"].to_numpy(float), means["x"].to_numpy(float) if with_x else None
    )
    held = means["heldout"].to_numpy(bool)
    observed = means["test_loss"].to_numpy(float)
    return {
        "delta_e": statistics.mean_absolute_deviation(predicted[~held], observed[~held]),
        "delta_h": statistics.mean_absolute_deviation(predicted[held], observed[held]),
        "n_fit": int((~held).sum()),
        "n_heldout": int(held.sum()),
        "heldout_by": _heldout_by(predicted, observed, means),
    }


HELDOUT_KINDS = {
    "x": "heldout_x",
    "df": "heldout_df",  # heldout_error rows: points held out by X, by Df,
    "shared": "heldout_shared",
}  # and shared conditions another axis holds out


def _heldout_by(predicted: np.ndarray, observed: np.ndarray, means: pd.DataFrame) -> dict:
    """Delta_h and the point count per kind of held-out point (X held out, Df held out, held out on
    another axis), for the kinds that have points; a point held out both ways counts in both."""
    out = {}
    for kind, column in HELDOUT_KINDS.items():
        held = means[column].to_numpy(bool) if column in means else np.zeros(len(means), bool)
        if held.any():
            out[kind] = {
                "delta_h": statistics.mean_absolute_deviation(predicted[held], observed[held]),
                "n_heldout": int(held.sum()),
            }
    return out


def _points_record(means: pd.DataFrame) -> dict:
    return {
        "x": means["x"].tolist(),
        "finetune_examples": means["finetune_examples"].astype(float).tolist(),
        "loss": means["test_loss"].tolist(),
        "heldout": means["heldout"].astype(bool).tolist(),
    }


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
                **_deltas("power", params, means, with_x=False),
                "points": _points_record(means),
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
                **_deltas(law, params, m),
                "n_starts": result[axis].n_starts,
                "x_values": sorted(m["x"].unique().tolist()),
                "points": _points_record(m),
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
        bootstrap=int(options["bootstrap"]),
        seed=int(options["seed"]),
        notes=notes,
    )
    fits["pretraining"] = _pretraining(pretrain, options, notes)
    return fits
