"""From the tidy runs table to the paper's tables: fits per task, factor and method.

Procedure (STUDY.md): fit on the mean over seeds of each condition; held-out points (per axis, by
value) are excluded from fitting and only measure extrapolation (Delta_h). For each task and
method, beta and E are shared: one joint fit over the model-size and pretraining-data points, then
beta and E fixed and a, alpha refit per factor (PET too). The bootstrap resamples runs.
"""
from __future__ import annotations

import json
import logging
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ftscale import fitting

log = logging.getLogger("ftscale.analysis")
AXIS_X = {"model": "params", "pretrain": "pretrain_tokens", "pet": "pet_size"}
AXIS_HELDOUT_COLUMN = {"model": "model", "pretrain": "pretrain_tokens", "pet": "pet_size"}
JOINT_LAWS = ("multiplicative", "additive")
DEFAULT_OPTIONS = {
    "objective": "huber", "huber_delta": 1e-3, "init_grid": {}, "bootstrap": 100, "seed": 0,
    "heldout": {"model": [], "pretrain": [], "pet": [], "finetune_examples": []}, "which_method": [],
}
TABLES = ("single_variable", "heldout_error", "params", "critical", "correlation", "which_method")


def usable_runs(metrics: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished: diverged ones are dropped with a warning that names them."""
    bad = metrics[(metrics["status"] != "ok") | ~np.isfinite(metrics["test_loss"].astype(float))]
    if len(bad):
        names = ", ".join(f"{r.task}/{r.model}/{r.pretrain_tokens}/{r.method}-{r.pet_size}/df{r.finetune_examples}/seed{r.seed}"
                          for r in bad.itertuples())
        warnings.warn(f"excluded from fits, not ok: {names}")
    return metrics.drop(bad.index)


def axis_points(runs: pd.DataFrame, axis: str, heldout: dict) -> pd.DataFrame:
    """Runs of one axis with X and a held-out flag."""
    points = runs[runs[f"axis_{axis}"].astype(bool)].copy()
    points["x"] = points[AXIS_X[axis]].astype(float)
    held = points[AXIS_HELDOUT_COLUMN[axis]].isin(heldout.get(axis, []))
    points["heldout"] = held | points["finetune_examples"].isin(heldout.get("finetune_examples", []))
    return points


def condition_means(points: pd.DataFrame) -> pd.DataFrame:
    return points.groupby(["x", "finetune_examples", "heldout"], as_index=False)["test_loss"].mean()


def _group(means: pd.DataFrame, with_x: bool = True) -> fitting.Group:
    fitted = means[~means["heldout"]]
    return fitting.Group(fitted["finetune_examples"], fitted["test_loss"], fitted["x"] if with_x else None)


def joint_fits(points_by_axis: dict[str, pd.DataFrame], law: str, options: dict,
               warm: dict | None = None) -> dict[str, dict]:
    """The paper's two steps for one task and method: shared beta and E from the model and
    pretraining axes together, then each axis refit with them fixed. `warm` (the "_start" vectors
    of an earlier result) replaces the init grid: the bootstrap starts from the full-data fit."""
    kw = {"objective": options["objective"], "delta": options["huber_delta"], "init_grid": options["init_grid"]}
    warm = warm or {}
    means = {axis: condition_means(p) for axis, p in points_by_axis.items()}
    shared_axes = [a for a in ("model", "pretrain") if a in means]
    fixed, results = {}, {"_start": {}}
    if shared_axes:
        step_one = fitting.fit(law, [_group(means[a]) for a in shared_axes], starts=warm.get("step_one"), **kw)
        fixed = {"beta": step_one.params[0]["beta"], "e": step_one.params[0]["e"]}
        results["_start"]["step_one"] = step_one.vector
    for axis, m in means.items():
        result = fitting.fit(law, [_group(m)], fixed=fixed, starts=warm.get(axis), **kw)
        results["_start"][axis] = result.vector
        params = result.params[0]
        predicted = fitting.predict(law, params, m["finetune_examples"], m["x"])
        held = m["heldout"].to_numpy()
        results[axis] = {
            "params": params, "shared_from": shared_axes,
            "delta_e": fitting.mean_absolute_deviation(predicted[~held], m["test_loss"][~held]),
            "delta_h": fitting.mean_absolute_deviation(predicted[held], m["test_loss"][held]),
            "n_fit": int((~held).sum()), "n_heldout": int(held.sum()),
        }
    return results


def _fit_or_note(what: str, function, *args):
    try:
        return function(*args)
    except fitting.FitError as error:
        log.info("skipped %s: %s", what, error)
        return None


def _bootstrap(points_by_axis: dict[str, pd.DataFrame], options: dict, rng, warm: dict) -> list[dict]:
    """Multiplicative joint fits on runs resampled with replacement (per axis), each started from
    the full-data fit."""
    samples = []
    for _ in range(options["bootstrap"]):
        resampled = {axis: p.iloc[rng.integers(0, len(p), len(p))] for axis, p in points_by_axis.items()}
        sample = _fit_or_note("a bootstrap resample", joint_fits, resampled, "multiplicative", options, warm)
        if sample:
            samples.append(sample)
    return samples


def analyze(metrics: pd.DataFrame, options: dict) -> dict:
    """All fits of a study, as a JSON-ready dict."""
    options = DEFAULT_OPTIONS | {k: v for k, v in options.items() if v is not None}
    options["heldout"] = DEFAULT_OPTIONS["heldout"] | options["heldout"]
    runs = usable_runs(metrics)
    rng = np.random.default_rng(options["seed"])
    fits = {"options": options, "single_variable": [], "joint": [], "critical": [], "correlation": [],
            "which_method": []}
    for (task, method), task_runs in runs.groupby(["task", "method"], sort=True):
        points = {axis: axis_points(task_runs, axis, options["heldout"]) for axis in AXIS_X}
        points = {axis: p for axis, p in points.items() if p["x"].nunique() >= 2 and len(p) >= 5}
        for model, p in axis_points(task_runs, "model", options["heldout"]).groupby("model"):
            means = condition_means(p)
            single = _fit_or_note(f"{task}/{method}/{model} single-variable", fitting.fit, "power",
                                  [_group(means, with_x=False)])
            if single:
                predicted = fitting.predict("power", single.params[0], means["finetune_examples"])
                held = means["heldout"].to_numpy()
                fits["single_variable"].append({
                    "task": task, "method": method, "model": model, "params": float(p["params"].iloc[0]),
                    **{k: single.params[0][k] for k in ("A", "beta", "E")},
                    "delta_e": fitting.mean_absolute_deviation(predicted[~held], means["test_loss"][~held]),
                    "delta_h": fitting.mean_absolute_deviation(predicted[held], means["test_loss"][held])})
        for law in JOINT_LAWS:
            joint = _fit_or_note(f"{task}/{method} {law}", joint_fits, points, law, options) or {"_start": {}}
            warm = joint.pop("_start")
            samples = _bootstrap(points, options, rng, warm) if law == "multiplicative" and warm else []
            for axis, result in joint.items():
                intervals = {k: fitting.percentile_interval([s[axis]["params"][k] for s in samples if axis in s])
                             for k in ("A", "alpha", "beta", "E")} if samples else {}
                fits["joint"].append({"task": task, "method": method, "axis": axis, "law": law, **result,
                                      "intervals": intervals, "x_values": sorted(points[axis]["x"].unique()),
                                      "bootstrap": [s[axis]["params"] for s in samples if axis in s]})
        for axis, p in points.items():
            metric = "rougeL" if p["rougeL"].notna().any() else "bleu"
            r, pvalue = fitting.pearson(p["test_loss"], p[metric])
            fits["correlation"].append({"task": task, "axis": axis, "method": method, "metric": metric,
                                        "r": r, "p": pvalue, "n": len(p)})
    fits["critical"] = critical_sizes(fits["joint"])
    fits["which_method"] = which_method(fits["joint"], runs, options)
    return fits


def _multiplicative(joint: list[dict]) -> dict:
    return {(f["task"], f["axis"], f["method"]): f for f in joint if f["law"] == "multiplicative"}


def critical_sizes(joint: list[dict]) -> list[dict]:
    """Critical Df between each pair of methods at each X of the axis (model and pretraining)."""
    fits, rows = _multiplicative(joint), []
    for task, axis in sorted({(t, a) for t, a, _ in fits if a != "pet"}):
        methods = sorted(m for t, a, m in fits if (t, a) == (task, axis))
        for first, second in combinations(methods, 2):
            p1, p2 = fits[(task, axis, first)]["params"], fits[(task, axis, second)]["params"]
            h, gamma = fitting.critical_closed_form(p1, p2)
            for x in fits[(task, axis, first)]["x_values"]:
                with np.errstate(over="ignore", invalid="ignore"):
                    closed_form = float(h * x ** gamma)
                rows.append({"task": task, "axis": axis, "method_1": first, "method_2": second, "x": x,
                             "critical_df": fitting.critical_size("multiplicative", p1, p2, x),
                             "closed_form_df": closed_form,
                             "H": h, "gamma": gamma, "E_1_minus_E_2": p1["E"] - p2["E"]})
    return rows


def which_method(joint: list[dict], runs: pd.DataFrame, options: dict) -> list[dict]:
    """Predicted best method at (task, axis, X, Df) and the share of bootstrap fits agreeing."""
    fits = _multiplicative(joint)
    queries = options["which_method"] or [
        {"task": t, "axis": a, "x": x, "finetune_examples": int(df)}
        for (t, a, m), f in fits.items() if a != "pet" and m == min(mm for tt, aa, mm in fits if (tt, aa) == (t, a))
        for x in f["x_values"] for df in sorted(runs.loc[runs.task == t, "finetune_examples"].unique())]
    rows = []
    for q in queries:
        candidates = {m: f for (t, a, m), f in fits.items() if (t, a) == (q["task"], q["axis"])}
        if len(candidates) < 2:
            continue
        predicted = {m: float(fitting.predict("multiplicative", f["params"], q["finetune_examples"], q["x"]))
                     for m, f in candidates.items()}
        best = min(predicted, key=predicted.get)
        replicates = min(len(f["bootstrap"]) for f in candidates.values())
        wins = sum(min(candidates, key=lambda m: fitting.predict("multiplicative", candidates[m]["bootstrap"][i],
                                                                   q["finetune_examples"], q["x"])) == best
                   for i in range(replicates))
        rows.append({**q, "best_method": best, "probability": wins / replicates if replicates else float("nan"),
                     **{f"loss_{m}": v for m, v in predicted.items()}})
    return rows


def tables(fits: dict) -> dict[str, pd.DataFrame]:
    joint = pd.DataFrame([{k: v for k, v in f.items() if k not in ("params", "intervals", "bootstrap", "x_values",
                                                                    "shared_from")} | f["params"]
                          | {f"{k}_low": lo for k, (lo, hi) in f["intervals"].items()}
                          | {f"{k}_high": hi for k, (lo, hi) in f["intervals"].items()} for f in fits["joint"]])
    heldout = joint[["task", "axis", "method", "law", "delta_e", "delta_h", "n_fit", "n_heldout"]] if len(joint) else joint
    params = joint[joint["law"] == "multiplicative"].drop(columns=["law"]) if len(joint) else joint
    return {"single_variable": pd.DataFrame(fits["single_variable"]), "heldout_error": heldout, "params": params,
            "critical": pd.DataFrame(fits["critical"]), "correlation": pd.DataFrame(fits["correlation"]),
            "which_method": pd.DataFrame(fits["which_method"])}


def _markdown(name: str, table: pd.DataFrame) -> str:
    if table.empty:
        return f"*No {name.replace('_', ' ')} results: too few points for this fit.*\n"
    shown = table.copy()
    for k in ("A", "alpha", "beta", "E"):      # intervals as "value [low, high]"
        if f"{k}_low" in shown:
            shown[k] = [f"{v:.4g} [{lo:.4g}, {hi:.4g}]" for v, lo, hi in zip(shown[k], shown[f"{k}_low"], shown[f"{k}_high"])]
            shown = shown.drop(columns=[f"{k}_low", f"{k}_high"])
    return shown.to_markdown(index=False, floatfmt=".4g") + "\n"


def run_analysis(metrics: pd.DataFrame, options: dict, out_dir: Path) -> dict:
    """Fit everything and write each table as CSV and Markdown, plus fits.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = analyze(metrics, options)
    for name, table in tables(fits).items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
        (out_dir / f"{name}.md").write_text(_markdown(name, table))
    (out_dir / "fits.json").write_text(json.dumps(fits, indent=1, default=float))
    return fits
