"""Which method where, from the multiplicative joint fits (ftscale.analysis.procedure): the critical
finetuning-data size at which two methods' predicted losses cross (Table 5, Fig 5), reported as a
number only inside the Df range both were measured on, and the method with the lowest predicted loss
at a (task, axis, X, Df) with its bootstrap probability (the which-method table)."""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ftscale.fitting import laws, statistics
from ftscale.fitting.statistics import INTERVAL_LEVEL
from ftscale.plan.grid import method_order

CRITICAL_RANGE = (1.0, 1e12)      # finetuning examples searched for a crossing; none inside -> NaN


def bootstrap_samples(fit_row: dict) -> dict | None:
    """A joint fit's bootstrap replicates as arrays per parameter; None without a bootstrap."""
    if "bootstrap" not in fit_row:
        return None
    return {k: np.asarray(v, float) for k, v in fit_row["bootstrap"].items()}


def critical_sizes(joint: list[dict]) -> list[dict]:
    """Table 5 and Fig 5: for each task, axis (model, pretrain) and pair of methods, H and gamma of the
    closed form and the critical Df at each X of the axis, numerically (with bootstrap intervals)."""
    fits = {(f["task"], f["axis"], f["method"]): f for f in joint if f["law"] == "multiplicative"}
    rows = []
    for task, axis in sorted({(t, a) for t, a, _ in fits if a != "pet"}):
        methods = method_order(m for t, a, m in fits if (t, a) == (task, axis))
        for first, second in combinations(methods, 2):
            f1, f2 = fits[(task, axis, first)], fits[(task, axis, second)]
            p1, p2 = f1["params"], f2["params"]
            h, gamma = laws.critical_closed_form(p1, p2)
            s1, s2 = bootstrap_samples(f1), bootstrap_samples(f2)
            equal_e = bool(np.isclose(p1["E"], p2["E"], rtol=1e-9, atol=0.0))
            measured = measured_df_range(f1, f2)
            for x in sorted(set(f1["x_values"]) | set(f2["x_values"])):
                numerical = laws.critical_size("multiplicative", p1, p2, x, *CRITICAL_RANGE)
                with np.errstate(over="ignore", invalid="ignore"):
                    closed = float(h * np.power(float(x), gamma))
                row = {"task": task, "axis": axis, "method_1": first, "method_2": second, "H": h, "gamma": gamma,
                       "E_1": p1["E"], "E_2": p2["E"], "x": x, **within_measured(numerical, measured),
                       "closed_form_df": within_measured(closed, measured)["critical_df"],
                       "closed_form_exact": equal_e}
                if s1 is not None and s2 is not None:
                    n = min(len(s1["A"]), len(s2["A"]))
                    boot = laws.critical_size("multiplicative", {k: v[:n] for k, v in s1.items()},
                                                 {k: v[:n] for k, v in s2.items()}, x, *CRITICAL_RANGE)
                    # an interval end beyond the measured range is shown at the range's bound
                    low, high = (float(v) for v in np.clip(statistics.percentile_interval(boot, INTERVAL_LEVEL), *measured))
                    row |= {"critical_df_low": low, "critical_df_high": high,
                            "crossing_share": float(np.mean(np.isfinite(boot)))}
                rows.append(row)
    return rows


def measured_df_range(fit_1: dict, fit_2: dict) -> tuple[float, float]:
    """The finetuning-data sizes both methods were measured at (held-out sizes included): [low, high]."""
    sizes_1, sizes_2 = fit_1["points"]["finetune_examples"], fit_2["points"]["finetune_examples"]
    return float(max(min(sizes_1), min(sizes_2))), float(min(max(sizes_1), max(sizes_2)))


def within_measured(critical_df: float, measured: tuple[float, float]) -> dict:
    """A critical Df inside the measured range as a number; outside it only as "below range" or "above
    range" with the bound (an extrapolated crossing is not a finding), and "no crossing" where the
    curves never cross. Returns critical_df (NaN unless in range), critical_df_range and df_low/df_high."""
    low, high = measured
    if not np.isfinite(critical_df):
        where = "no crossing"
    elif critical_df < low:
        where = f"below range (< {low:g})"
    elif critical_df > high:
        where = f"above range (> {high:g})"
    else:
        where = "in range"
    return {"critical_df": float(critical_df) if where == "in range" else float("nan"),
            "critical_df_range": where, "df_low": low, "df_high": high}


def which_method(joint: list[dict], means_of: dict, queries: list[dict], note) -> list[dict]:
    """The method with the lowest predicted loss at (task, axis, X, Df), the share of bootstrap
    replicates that agree, and the observed best where every method ran that condition. queries: the
    config's analysis.which_method ([]: every X and Df of the grid); note(message) records a skipped one."""
    fits = {(f["task"], f["axis"], f["method"]): f for f in joint if f["law"] == "multiplicative"}
    queries = list(queries)
    if not queries:       # the grid's own points: every X of the axis times every Df any method ran
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
            note(f"which_method query {query}: the PET axis' X is a prompt length for one method and a "
                 "LoRA rank for another; methods are compared on the model or pretrain axis")
            continue
        candidates = {m: fits[(t, a, m)] for t, a, m in fits if (t, a) == (task, axis)}
        if len(candidates) < 2:
            note(f"which_method query {query}: fewer than two methods have a fit on that axis")
            continue
        x, df = query.get("x"), float(query.get("finetune_examples"))
        if isinstance(x, str):       # a model name on the model axis
            sizes = {m: s for (t, mm), table in means_of.items() if t == task and "model" in table
                     for m, s in zip(table["model"]["model"], table["model"]["x"])}
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
            losses = np.stack([laws.predict("multiplicative", {k: v[:n] for k, v in s.items()}, df, x)
                               for s in samples])
            usable = np.all(np.isfinite(losses), axis=0)        # a failed replicate fit wins nothing
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
