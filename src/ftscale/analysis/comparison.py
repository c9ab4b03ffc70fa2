"""Which method where, from the multiplicative joint fits (ftscale.analysis.procedure): the critical
finetuning-data sizes at which two methods' predicted losses cross (Table 5, Fig 5), solved over the
whole positive Df range as the paper does (it extrapolates its fitted laws), each reported with
where it lies against the Df each method was measured on; and the method with the lowest predicted
loss at a (task, axis, X, Df) with its bootstrap probability (the which-method table)."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from ftscale.fitting import laws, statistics
from ftscale.fitting.diagnostics import describe
from ftscale.fitting.statistics import INTERVAL_LEVEL
from ftscale.plan.grid import method_order

INSIDE_BOTH, EXTRAPOLATED, NO_CROSSING = "inside both", "extrapolated", "no crossing"  # values of `where`


def bootstrap_samples(fit_row: dict) -> dict | None:
    """A joint fit's bootstrap replicates as arrays per parameter; None without a bootstrap."""
    if "bootstrap" not in fit_row:
        return None
    return {k: np.asarray(v, float) for k, v in fit_row["bootstrap"].items()}


def method_pairs(joint: list[dict]):
    """(task, axis, fit of method 1, fit of method 2) for every pair of methods with multiplicative
    joint fits on the model or pretraining axis (the PET axis' X differs between methods)."""
    fits = {(f["task"], f["axis"], f["method"]): f for f in joint if f["law"] == "multiplicative"}
    for task, axis in sorted({(t, a) for t, a, _ in fits if a != "pet"}):
        methods = method_order(m for t, a, m in fits if (t, a) == (task, axis))
        for first, second in combinations(methods, 2):
            yield task, axis, fits[(task, axis, first)], fits[(task, axis, second)]


def critical_sizes(joint: list[dict]) -> list[dict]:
    """Table 5 and Fig 5: for each task, axis (model, pretrain) and pair of methods, H and gamma of
    the closed form and, at each X of the axis, every crossing (laws.crossings: at most two) as a
    number with where it lies (`where`, `beyond_1`, `beyond_2`: see located) and its bootstrap
    interval, never clipped; one row saying "no crossing" where the curves never cross. Every row
    carries `flagged` (it rests on a fit that ftscale.fitting.diagnostics flags) and `diagnostics`
    (which method's fit and why, "" when both are clean)."""
    rows = []
    for task, axis, f1, f2 in method_pairs(joint):
        p1, p2 = f1["params"], f2["params"]
        h, gamma = laws.critical_closed_form(p1, p2)
        s1, s2 = bootstrap_samples(f1), bootstrap_samples(f2)
        ranges = measured_df_range(f1), measured_df_range(f2)
        pair = {
            "task": task,
            "axis": axis,
            "method_1": f1["method"],
            "method_2": f2["method"],
            "H": h,
            "gamma": gamma,
            "E_1": p1["E"],
            "E_2": p2["E"],
            "closed_form_exact": bool(np.isclose(p1["E"], p2["E"], rtol=1e-9, atol=0.0)),
        } | resting_on(f1, f2)
        for x in sorted(set(f1["x_values"]) | set(f2["x_values"])):
            found = laws.crossings("multiplicative", p1, p2, x)
            boot = None
            if s1 is not None and s2 is not None:
                n = min(len(s1["A"]), len(s2["A"]))
                boot = laws.crossings(
                    "multiplicative", {k: v[:n] for k, v in s1.items()}, {k: v[:n] for k, v in s2.items()}, x
                )  # (n, 2)
            with np.errstate(over="ignore", invalid="ignore"):
                closed = float(h * np.power(float(x), gamma))
            slots = [k for k in range(2) if np.isfinite(found[k])] or [None]
            for number, slot in enumerate(slots, 1):
                row = pair | {
                    "x": x,
                    "crossing": number if slot is not None else 0,
                    "n_crossings": len(slots) if slot is not None else 0,
                    **located(np.nan if slot is None else found[slot], f1["method"], f2["method"], *ranges),
                    "closed_form_df": closed,
                }
                if boot is not None:
                    row |= bootstrap_interval(boot, slot)
                rows.append(row)
    return rows


def resting_on(*fit_rows: dict) -> dict:
    """Whether a result drawn from these fits rests on a flagged one: `flagged` (bool) and
    `diagnostics`, e.g. "prompt: degenerate: |alpha| 43.85 > 5" ("" when every fit is clean)."""
    reasons = [
        f"{row['method']}: {describe(row['diagnostics'])}"
        for row in fit_rows
        if (row.get("diagnostics") or {}).get("flagged")
    ]
    return {"flagged": bool(reasons), "diagnostics": " | ".join(reasons)}


def bootstrap_interval(boot: np.ndarray, slot: int | None) -> dict:
    """The percentile interval of one crossing over the replicates that have it (the same side of
    their gap's turning point: laws.crossings' slot), and the share of replicates that do; without a
    crossing, the share of replicates that cross at all."""
    if slot is None:
        return {
            "critical_df_low": np.nan,
            "critical_df_high": np.nan,
            "crossing_share": float(np.mean(np.isfinite(boot).any(axis=-1))),
        }
    values = boot[:, slot]
    low, high = statistics.percentile_interval(values, INTERVAL_LEVEL)
    return {
        "critical_df_low": float(low),
        "critical_df_high": float(high),
        "crossing_share": float(np.mean(np.isfinite(values))),
    }


def measured_df_range(fit: dict) -> tuple[float, float]:
    """The finetuning-data sizes a method was measured at on an axis (held-out sizes included)."""
    sizes = fit["points"]["finetune_examples"]
    return float(min(sizes)), float(max(sizes))


def beyond(critical_df: float, measured: tuple[float, float]) -> float:
    """How far a Df lies beyond a measured range [low, high], as a factor >= 1: 1 inside, low / Df
    below it, Df / high above it."""
    low, high = measured
    return float(max(1.0, low / critical_df, critical_df / high))


def located(critical_df: float, method_1: str, method_2: str, range_1, range_2) -> dict:
    """A crossing with where it lies: `where` is "inside both" (both methods were measured at Df
    around it), "inside <method> only", "extrapolated" (beyond both) or "no crossing"; beyond_1 and
    beyond_2 are the factors it lies beyond each method's measured Df (1: inside); the ranges too."""
    ranges = {"df_low_1": range_1[0], "df_high_1": range_1[1], "df_low_2": range_2[0], "df_high_2": range_2[1]}
    if not np.isfinite(critical_df):
        return {"critical_df": np.nan, "where": NO_CROSSING, "beyond_1": np.nan, "beyond_2": np.nan} | ranges
    factor_1, factor_2 = beyond(critical_df, range_1), beyond(critical_df, range_2)
    where = {
        (True, True): INSIDE_BOTH,
        (True, False): f"inside {method_1} only",
        (False, True): f"inside {method_2} only",
        (False, False): EXTRAPOLATED,
    }[(factor_1 == 1, factor_2 == 1)]
    return {"critical_df": float(critical_df), "where": where, "beyond_1": factor_1, "beyond_2": factor_2} | ranges


def critical_curve(fit_1: dict, fit_2: dict, x) -> tuple[np.ndarray, np.ndarray]:
    """Fig 5's curves: the crossings of two multiplicative fits at each X of `x` ((G, 2), NaN where
    none) and where each lies ((G, 2) of located's `where`)."""
    values = laws.crossings("multiplicative", fit_1["params"], fit_2["params"], np.asarray(x, float))
    ranges = measured_df_range(fit_1), measured_df_range(fit_2)
    where = np.array([[located(v, "1", "2", *ranges)["where"] for v in row] for row in values], dtype=object)
    return values, where


def which_method(joint: list[dict], means_of: dict, queries: list[dict], note) -> list[dict]:
    """The method with the lowest predicted loss at (task, axis, X, Df), the share of bootstrap
    replicates that agree, and the observed best where every method ran that condition. queries: the
    config's analysis.which_method ([]: every X and Df of the grid); note(message) records a skipped one."""
    fits = {(f["task"], f["axis"], f["method"]): f for f in joint if f["law"] == "multiplicative"}
    queries = list(queries)
    if not queries:  # the grid's own points: every X of the axis times every Df any method ran
        for task, axis in sorted({(t, a) for t, a, _ in fits if a != "pet"}):
            methods = [m for t, a, m in fits if (t, a) == (task, axis)]
            if len(methods) < 2:
                continue
            xs = sorted({x for m in methods for x in fits[(task, axis, m)]["x_values"]})
            dfs = sorted({d for m in methods for d in fits[(task, axis, m)]["points"]["finetune_examples"]})
            queries += [{"task": task, "axis": axis, "x": x, "finetune_examples": d} for x in xs for d in dfs]
    rows = []
    for query in queries:
        task, axis = query.get("task"), query.get("axis")
        if axis == "pet":
            note(
                f"which_method query {query}: the PET axis' X is a prompt length for one method and a "
                "LoRA rank for another; methods are compared on the model or pretrain axis"
            )
            continue
        candidates = {m: fits[(t, a, m)] for t, a, m in fits if (t, a) == (task, axis)}
        if len(candidates) < 2:
            note(f"which_method query {query}: fewer than two methods have a fit on that axis")
            continue
        x, df = query.get("x"), float(query.get("finetune_examples"))
        if isinstance(x, str):  # a model name on the model axis
            sizes = {
                m: s
                for (t, mm), table in means_of.items()
                if t == task and "model" in table
                for m, s in zip(table["model"]["model"], table["model"]["x"])
            }
            if x not in sizes:
                note(f"which_method query {query}: unknown model {x!r}")
                continue
            x = sizes[x]
        x = float(x)
        methods = method_order(candidates)
        predicted = {m: float(laws.predict("multiplicative", candidates[m]["params"], df, x)) for m in methods}
        best = min(methods, key=lambda m: predicted[m])
        row = {"task": task, "axis": axis, "x": x, "finetune_examples": df, "best_method": best}
        samples = [bootstrap_samples(candidates[m]) for m in methods]
        if all(s is not None for s in samples):
            n = min(len(s["A"]) for s in samples)
            losses = np.stack(
                [laws.predict("multiplicative", {k: v[:n] for k, v in s.items()}, df, x) for s in samples]
            )
            usable = np.all(np.isfinite(losses), axis=0)  # a failed replicate fit wins nothing
            wins = np.argmin(losses[:, usable], axis=0) == methods.index(best)
            row["probability"] = float(np.mean(wins)) if usable.any() else float("nan")
        else:
            row["probability"] = float("nan")
        row |= {f"loss_{m}": predicted[m] for m in methods}
        observed = {}
        for m in methods:
            table = means_of.get((task, m), {}).get(axis)
            hit = table[(table["x"] == x) & (table["finetune_examples"] == df)] if table is not None else []
            if len(hit):
                observed[m] = float(hit["test_loss"].iloc[0])
        row["observed_best"] = min(observed, key=observed.get) if len(observed) == len(methods) else None
        rows.append(row)
    return rows
