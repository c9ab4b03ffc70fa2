"""How well each joint law predicts what it was not fitted on, beyond the configured hold-out:
leave-one-X-out and leave-one-Df-out errors, and a paired bootstrap of the multiplicative against the
additive law's Delta_h per task (the paper's Table 2 question, with its uncertainty).

Leave-one-out (per task, method, law and axis):
- leave one X out: for each fitted X value of the axis, the conditions at that X are left out of EVERY
  axis's fit (the shared condition is one run on two axes: kept on the other it would leak back), the
  joint procedure is refitted, warm-started at the full fit, and the left-out points of the axis are
  predicted; error(X) = mean |prediction - observed loss| over them;
- leave one Df out: the same with all conditions of one finetuning-data size, on every axis at once;
- reported: the mean of error(value) over the values that could be refitted (an axis left with fewer
  than two X or Df values is not refitted), and their count.

Paired bootstrap (per task): the multiplicative law's bootstrap replicates (ftscale.analysis.procedure,
condition means resampled within conditions) are drawn again from the same stream, and the additive
law is refitted on exactly those replicates. Per replicate b, d_b = mean over (method, axis) of
Delta_h(multiplicative) - Delta_h(additive), both measured on replicate b's held-out means. Reported:
the point difference (from the full fits), its percentile interval, and the share of replicates in
which the multiplicative law extrapolates better (d_b < 0).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ftscale.fitting import laws, solver, statistics
from ftscale.fitting.laws import JOINT_LAWS, LAWS
from ftscale.fitting.statistics import INTERVAL_LEVEL

SHARED_AXES = ("model", "pretrain")      # fit_joint's default: the axes whose step one sets beta and E


def _warm(law: str, rows: dict[str, dict], axes: list[str]) -> dict:
    """Start vectors for solver.fit_joint from the full fit's rows (one per axis, params as fitted)."""
    spec = LAWS[law]
    warm = {axis: np.array([rows[axis]["params"][k] for k in spec.group_params]) for axis in axes}
    joint = [a for a in SHARED_AXES if a in axes]
    if joint:
        shared = [rows[joint[0]]["params"][k] for k in spec.shared_params]
        warm["step_one"] = np.concatenate([warm[a] for a in joint] + [np.array(shared)])
    return warm


def _refit(law, means, rows, drop, fit_kwargs):
    """The joint procedure without the conditions in `drop`; None where nothing can be refitted."""
    groups = {}
    for axis, m in means.items():
        kept = m[~m["heldout"] & ~m["condition"].isin(drop)]
        if axis in rows and kept["x"].nunique() >= 2 and kept["finetune_examples"].nunique() >= 2:
            groups[axis] = laws.Group(kept["finetune_examples"].to_numpy(float), kept["test_loss"].to_numpy(float),
                                      kept["x"].to_numpy(float))
    if not groups:
        return None
    try:
        return solver.fit_joint(law, groups, warm=_warm(law, rows, list(groups)), **fit_kwargs)
    except laws.FitError:
        return None


def _error(law, result, axis, points: pd.DataFrame) -> float:
    if result is None or axis not in result or points.empty:
        return float("nan")
    predicted = laws.predict(law, result[axis].params[0], points["finetune_examples"].to_numpy(float),
                             points["x"].to_numpy(float))
    return statistics.mean_absolute_deviation(predicted, points["test_loss"].to_numpy(float))


def leave_one_out(task: str, method: str, means: dict[str, pd.DataFrame], joint_rows: list[dict],
                  fit_kwargs: dict) -> list[dict]:
    """Rows {task, method, law, axis, leave_out ("x" or "df"), error, n_values, errors {value: error}}."""
    out = []
    for law in JOINT_LAWS:
        rows = {r["axis"]: r for r in joint_rows if r["law"] == law}
        fitted = {axis: m[~m["heldout"]] for axis, m in means.items() if axis in rows}
        errors = {(axis, kind): {} for axis in fitted for kind in ("x", "df")}
        for axis, points in fitted.items():                       # one X of one axis at a time
            for x, left in points.groupby("x"):
                result = _refit(law, means, rows, set(left["condition"]), fit_kwargs)
                errors[(axis, "x")][float(x)] = _error(law, result, axis, left)
        all_fitted = pd.concat(fitted.values()) if fitted else pd.DataFrame(columns=["finetune_examples"])
        for df in sorted(set(all_fitted["finetune_examples"])):   # one Df on every axis at once
            drop = set(all_fitted.loc[all_fitted["finetune_examples"] == df, "condition"])
            result = _refit(law, means, rows, drop, fit_kwargs)
            for axis, points in fitted.items():
                errors[(axis, "df")][float(df)] = _error(law, result, axis, points[points["finetune_examples"] == df])
        for (axis, kind), by_value in errors.items():
            finite = [e for e in by_value.values() if np.isfinite(e)]
            out.append({"task": task, "method": method, "law": law, "axis": axis, "leave_out": kind,
                        "error": float(np.mean(finite)) if finite else float("nan"), "n_values": len(finite),
                        "errors": by_value})
    return out


def paired_heldout(means: dict[str, pd.DataFrame], run_losses: list[np.ndarray], joint_rows: list[dict],
                   n_resamples: int, rng: np.random.Generator, fit_kwargs: dict) -> dict | None:
    """{law: {axis: (B,) Delta_h}} on the multiplicative bootstrap's own replicates (`rng` must be the
    stream procedure._bootstrap drew them from); None without a bootstrap or held-out points."""
    rows = {law: {r["axis"]: r for r in joint_rows if r["law"] == law} for law in JOINT_LAWS}
    axes = [a for a in means if a in rows["multiplicative"] and a in rows["additive"]
            and "bootstrap" in rows["multiplicative"][a] and means[a]["heldout"].any()]
    if n_resamples == 0 or not axes:
        return None
    replicates = statistics.resample_condition_means(run_losses, n_resamples, rng)
    fitted_axes = list(rows["additive"])
    groups = {a: laws.Group(m.loc[~m["heldout"], "finetune_examples"].to_numpy(float),
                            replicates[:, m.loc[~m["heldout"], "condition"].to_numpy(int)],
                            m.loc[~m["heldout"], "x"].to_numpy(float)) for a, m in means.items() if a in fitted_axes}
    try:
        additive = solver.fit_joint("additive", groups, warm=_warm("additive", rows["additive"], list(groups)),
                                    **fit_kwargs)
    except laws.FitError:
        return None
    params = {"multiplicative": {a: {k: np.asarray(v, float) for k, v in rows["multiplicative"][a]["bootstrap"].items()}
                                 for a in axes},
              "additive": {a: additive[a].params[0] for a in axes}}
    out = {law: {} for law in JOINT_LAWS}
    for axis in axes:
        held = means[axis][means[axis]["heldout"]]
        observed = replicates[:, held["condition"].to_numpy(int)]                       # (B, h)
        for law in JOINT_LAWS:
            p = {k: np.asarray(v, float)[:, None] for k, v in params[law][axis].items()}
            with np.errstate(over="ignore", invalid="ignore"):
                predicted = laws.predict(law, p, held["finetune_examples"].to_numpy(float), held["x"].to_numpy(float))
            out[law][axis] = np.mean(np.abs(predicted - observed), axis=1)
    return out


def law_comparison(paired: dict[tuple[str, str], dict | None], joint_rows: list[dict]) -> list[dict]:
    """Per task: mean Delta_h of both laws over its (method, axis) fits with held-out points, their
    difference (multiplicative - additive) with a paired-bootstrap interval, and the share of replicates
    in which the multiplicative law's Delta_h is lower."""
    point = {(r["task"], r["method"], r["axis"], r["law"]): r["delta_h"] for r in joint_rows}
    out = []
    for task in sorted({t for t, _ in paired}):
        items = [(m, a) for (t, m), p in paired.items() if t == task and p for a in p["multiplicative"]]
        if not items:
            continue
        diffs = np.stack([paired[(task, m)]["multiplicative"][a] - paired[(task, m)]["additive"][a]
                          for m, a in items])                                             # (items, B)
        with warnings.catch_warnings():          # a replicate failed in every fit: NaN, left out below
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.nanmean(np.where(np.isfinite(diffs), diffs, np.nan), axis=0)
        finite = d[np.isfinite(d)]
        mult = float(np.mean([point[(task, m, a, "multiplicative")] for m, a in items]))
        add = float(np.mean([point[(task, m, a, "additive")] for m, a in items]))
        low, high = statistics.percentile_interval(finite, INTERVAL_LEVEL)
        out.append({"task": task, "n_fits": len(items), "delta_h_multiplicative": mult, "delta_h_additive": add,
                    "difference": mult - add, "difference_low": low, "difference_high": high,
                    "p_multiplicative_lower": float(np.mean(finite < 0)) if finite.size else float("nan"),
                    "n_bootstrap": int(finite.size)})
    return out
