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
  than two X or Df values is not refitted), and their count;
- all refits of one task, method and law are one batch of the solver (a left-out point weighs 0).

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

SHARED_AXES = ("model", "pretrain")  # fit_joint's default: the axes whose step one sets beta and E


def _warm(law: str, rows: dict[str, dict], axes: list[str]) -> dict:
    """Start vectors for solver.fit_joint from the full fit's rows (one per axis, params as fitted)."""
    spec = LAWS[law]
    warm = {axis: np.array([rows[axis]["params"][k] for k in spec.group_params]) for axis in axes}
    joint = [a for a in SHARED_AXES if a in axes]
    if joint:
        shared = [rows[joint[0]]["params"][k] for k in spec.shared_params]
        warm["step_one"] = np.concatenate([warm[a] for a in joint] + [np.array(shared)])
    return warm


def _two_of_each(points: pd.DataFrame) -> bool:
    return points["x"].nunique() >= 2 and points["finetune_examples"].nunique() >= 2


def _refits(law, fitted: dict[str, pd.DataFrame], rows, drops: list[set], fit_kwargs) -> list[dict]:
    """Per set of left-out conditions in `drops`, the joint procedure refitted without them: {axis:
    params} of the axes left with two or more X and Df values (the others weigh nothing in that refit).
    All sets are solved as one batch, warm-started at the full fit: a left-out point weighs 0."""
    keep = {axis: np.array([~m["condition"].isin(d).to_numpy() for d in drops]) for axis, m in fitted.items()}
    usable = {axis: np.array([_two_of_each(m[k]) for k in keep[axis]]) for axis, m in fitted.items()}
    shared = [a for a in SHARED_AXES if a in fitted]
    groups = {
        axis: laws.Group(
            m["finetune_examples"].to_numpy(float),
            m["test_loss"].to_numpy(float),
            m["x"].to_numpy(float),
            weight=(keep[axis] & usable[axis][:, None]).astype(float),
        )
        for axis, m in fitted.items()
    }
    if not groups:
        return [{} for _ in drops]
    try:
        result = solver.fit_joint(law, groups, warm=_warm(law, rows, list(groups)), **fit_kwargs)
    except laws.FitError:
        return [{} for _ in drops]
    params = {axis: result[axis].params[0] for axis in groups}
    out = []
    for k in range(len(drops)):
        if shared and not any(usable[a][k] for a in shared):
            out.append({})  # nothing left to set beta and E: no refit for this set
            continue
        out.append({axis: {key: float(v[k]) for key, v in params[axis].items()} for axis in groups if usable[axis][k]})
    return out


def _error(law, params: dict | None, points: pd.DataFrame) -> float:
    if params is None or points.empty:
        return float("nan")
    predicted = laws.predict(law, params, points["finetune_examples"].to_numpy(float), points["x"].to_numpy(float))
    return statistics.mean_absolute_deviation(predicted, points["test_loss"].to_numpy(float))


def leave_one_out(
    task: str, method: str, means: dict[str, pd.DataFrame], joint_rows: list[dict], fit_kwargs: dict
) -> list[dict]:
    """Rows {task, method, law, axis, leave_out ("x" or "df"), error, n_values, errors {value: error}}."""
    out = []
    for law in JOINT_LAWS:
        rows = {r["axis"]: r for r in joint_rows if r["law"] == law}
        fitted = {axis: m[~m["heldout"]] for axis, m in means.items() if axis in rows}
        # one X of one axis at a time, then one Df on every axis at once
        x_cases = [(axis, x, left) for axis, points in fitted.items() for x, left in points.groupby("x")]
        all_fitted = pd.concat(fitted.values()) if fitted else pd.DataFrame(columns=["finetune_examples", "condition"])
        dfs = sorted(set(all_fitted["finetune_examples"]))
        drops = [set(left["condition"]) for _, _, left in x_cases] + [
            set(all_fitted.loc[all_fitted["finetune_examples"] == df, "condition"]) for df in dfs
        ]
        refits = _refits(law, fitted, rows, drops, fit_kwargs) if drops else []
        errors = {(axis, kind): {} for axis in fitted for kind in ("x", "df")}
        for (axis, x, left), refit in zip(x_cases, refits):
            errors[(axis, "x")][float(x)] = _error(law, refit.get(axis), left)
        for df, refit in zip(dfs, refits[len(x_cases) :]):
            for axis, points in fitted.items():
                errors[(axis, "df")][float(df)] = _error(
                    law, refit.get(axis), points[points["finetune_examples"] == df]
                )
        for (axis, kind), by_value in errors.items():
            finite = [e for e in by_value.values() if np.isfinite(e)]
            out.append(
                {
                    "task": task,
                    "method": method,
                    "law": law,
                    "axis": axis,
                    "leave_out": kind,
                    "error": float(np.mean(finite)) if finite else float("nan"),
                    "n_values": len(finite),
                    "errors": by_value,
                }
            )
    return out


def paired_heldout(
    means: dict[str, pd.DataFrame],
    run_losses: list[np.ndarray],
    joint_rows: list[dict],
    n_resamples: int,
    rng: np.random.Generator,
    fit_kwargs: dict,
) -> dict | None:
    """{law: {axis: (B,) Delta_h}} on the multiplicative bootstrap's own replicates (`rng` must be the
    stream procedure._bootstrap drew them from); None without a bootstrap or held-out points."""
    rows = {law: {r["axis"]: r for r in joint_rows if r["law"] == law} for law in JOINT_LAWS}
    axes = [
        a
        for a in means
        if a in rows["multiplicative"]
        and a in rows["additive"]
        and "bootstrap" in rows["multiplicative"][a]
        and means[a]["heldout"].any()
    ]
    if n_resamples == 0 or not axes:
        return None
    replicates = statistics.resample_condition_means(run_losses, n_resamples, rng)
    fitted_axes = list(rows["additive"])
    groups = {
        a: laws.Group(
            m.loc[~m["heldout"], "finetune_examples"].to_numpy(float),
            replicates[:, m.loc[~m["heldout"], "condition"].to_numpy(int)],
            m.loc[~m["heldout"], "x"].to_numpy(float),
        )
        for a, m in means.items()
        if a in fitted_axes
    }
    try:
        additive = solver.fit_joint(
            "additive", groups, warm=_warm("additive", rows["additive"], list(groups)), **fit_kwargs
        )
    except laws.FitError:
        return None
    params = {
        "multiplicative": {
            a: {k: np.asarray(v, float) for k, v in rows["multiplicative"][a]["bootstrap"].items()} for a in axes
        },
        "additive": {a: additive[a].params[0] for a in axes},
    }
    out = {law: {} for law in JOINT_LAWS}
    for axis in axes:
        held = means[axis][means[axis]["heldout"]]
        observed = replicates[:, held["condition"].to_numpy(int)]  # (B, h)
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
        diffs = np.stack(
            [paired[(task, m)]["multiplicative"][a] - paired[(task, m)]["additive"][a] for m, a in items]
        )  # (items, B)
        with warnings.catch_warnings():  # a replicate failed in every fit: NaN, left out below
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.nanmean(np.where(np.isfinite(diffs), diffs, np.nan), axis=0)
        finite = d[np.isfinite(d)]
        mult = float(np.mean([point[(task, m, a, "multiplicative")] for m, a in items]))
        add = float(np.mean([point[(task, m, a, "additive")] for m, a in items]))
        low, high = statistics.percentile_interval(finite, INTERVAL_LEVEL)
        out.append(
            {
                "task": task,
                "n_fits": len(items),
                "delta_h_multiplicative": mult,
                "delta_h_additive": add,
                "difference": mult - add,
                "difference_low": low,
                "difference_high": high,
                "p_multiplicative_lower": float(np.mean(finite < 0)) if finite.size else float("nan"),
                "n_bootstrap": int(finite.size),
            }
        )
    return out
