"""The tidy runs table (metrics.csv) as the fits see it: usable runs, each axis's points with its X
and what is held out, condition means over seeds, a fit's points as a Group, and its errors.

- runs whose status is not `ok` (or whose test loss is not finite) are dropped with a warning that
  names them (usable_runs);
- held-out points (per axis, by value; Df values on every axis) are left out of fitting and only
  measure extrapolation (Delta_h); a condition held out on one axis is held out of every joint fit
  (axis_points: the base model on the full corpus, shared by the model and pretraining axes, when
  the full corpus is a held-out budget);
- fits use the mean over seeds of each condition (condition_means).

ftscale.analysis.procedure fits these points.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ftscale.fitting import laws, statistics
from ftscale.plan.grid import AXES  # one list of axes for the whole package

AXIS_X = {"model": "params", "pretrain": "pretrain_tokens", "pet": "pet_size"}  # X of each axis
AXIS_HELDOUT_COLUMN = {"model": "model", "pretrain": "pretrain_tokens", "pet": "pet_size"}  # what heldout lists
GENERATION_METRICS = ("bleurt", "bleu", "chrf", "rougeL")  # Table 7 and Figs 7-9; bleurt: the paper's, where run
CONDITION = ["model", "params", "pretrain_tokens", "pet_size", "finetune_examples"]  # within a task and method
LARGEST_DF = "largest"  # analysis.heldout.finetune_examples: each task and method's largest Df


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


def deltas(law: str, params: dict, means: pd.DataFrame, with_x: bool = True) -> dict:
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


def points_record(means: pd.DataFrame) -> dict:
    return {
        "x": means["x"].tolist(),
        "finetune_examples": means["finetune_examples"].astype(float).tolist(),
        "loss": means["test_loss"].tolist(),
        "heldout": means["heldout"].astype(bool).tolist(),
    }
