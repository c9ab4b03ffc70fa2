"""Table writing: the paper's tables from `analysis.analyze`'s dict, as DataFrames, Markdown and
files. `run_analysis` fits everything (ftscale.analysis.procedure) and writes single_variable, heldout_error,
leave_one_out, law_comparison, params, critical, correlation, which_method, which_model (each .csv and .md) and fits.json
(everything, machine-readable: JSON null for NaN). Their names and columns are in ftscale.outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ftscale.analysis.procedure import analyze, ensure_log_output
from ftscale.fitting.diagnostics import describe
from ftscale.fitting.statistics import INTERVAL_LEVEL
from ftscale.outputs import TABLE_COLUMNS
from ftscale.plan.grid import AXES, METHODS


def tables(fits: dict) -> dict[str, pd.DataFrame]:
    """The tables of outputs.TABLE_COLUMNS from `analyze`'s dict."""
    rows = {name: [] for name in TABLE_COLUMNS}
    rows["single_variable"] = [
        {k: v for k, v in r.items() if k not in ("points", "heldout_by", "diagnostics")} | flag_columns(r)
        for r in fits["single_variable"]
    ]
    rows["heldout_error"] = heldout_error_rows(fits["joint"])
    rows["leave_one_out"] = leave_one_out_rows(fits.get("leave_one_out", []))
    rows["law_comparison"] = fits.get("law_comparison", [])
    for f in fits["joint"]:
        key = {"task": f["task"], "axis": f["axis"], "method": f["method"]}
        if f["law"] == "multiplicative":  # Table 4
            intervals = {
                f"{k}_{side}": bound
                for k, pair in f.get("intervals", {}).items()
                for side, bound in zip(("low", "high"), pair)
            }
            rows["params"].append(
                key
                | {k: f["params"][k] for k in ("A", "alpha", "beta", "E")}
                | intervals
                | {
                    "delta_e": f["delta_e"],
                    "delta_h": f["delta_h"],
                    "n_fit": f["n_fit"],
                    "n_heldout": f["n_heldout"],
                    "shared_from": "+".join(f["shared_from"]),
                    "n_bootstrap": len(f.get("bootstrap", {}).get("A", [])),
                }
                | flag_columns(f)
            )
    for name in ("critical", "correlation", "which_method", "which_model"):
        rows[name] = fits[name]
    out = {}
    for name, columns in TABLE_COLUMNS.items():
        table = pd.DataFrame(rows[name])
        for column in columns:
            if column not in table:
                table[column] = pd.Series(dtype=float)
        extra = [c for c in table.columns if c not in columns]
        out[name] = _sorted(table[columns + extra])
    return out


def flag_columns(fit_row: dict) -> dict:
    """A fit's diagnostics as table cells: flagged (bool) and diagnostics (why, "" when clean)."""
    diagnostics = fit_row.get("diagnostics") or {}
    return {"flagged": bool(diagnostics.get("flagged", False)), "diagnostics": describe(diagnostics)}


def leave_one_out_rows(leave_one_out: list[dict]) -> list[dict]:
    """Per task, axis, method and kind (x: one X left out at a time, df: one Df), both laws' mean
    error on the left-out points side by side (ftscale.analysis.validation)."""
    errors = {}
    for r in leave_one_out:
        key = {"task": r["task"], "axis": r["axis"], "method": r["method"], "leave_out": r["leave_out"]}
        errors.setdefault(tuple(key.values()), dict(key))[f"error_{r['law']}"] = r["error"]
        errors[tuple(key.values())]["n_values"] = r["n_values"]
    return list(errors.values())


def heldout_error_rows(joint: list[dict]) -> list[dict]:
    """Table 2/6: per task, axis and method, one row per kind of held-out point (`heldout`: x = the
    axis' held-out X values, df = the held-out finetuning-data sizes), both laws side by side; one
    row with heldout "none" where nothing is held out."""
    errors = {}
    for f in joint:
        kinds = f.get("heldout_by") or {"none": {"delta_h": float("nan"), "n_heldout": 0}}
        for kind, held in kinds.items():
            key = {"task": f["task"], "axis": f["axis"], "method": f["method"], "heldout": kind}
            row = errors.setdefault(tuple(key.values()), dict(key))
            row |= {
                f"delta_e_{f['law']}": f["delta_e"],
                f"delta_h_{f['law']}": held["delta_h"],
                "n_fit": f["n_fit"],
                "n_heldout": held["n_heldout"],
            }
            if (f.get("diagnostics") or {}).get("flagged"):  # which laws' fits are flagged, "" none
                row["flagged"] = "+".join(filter(None, [row.get("flagged", ""), f["law"]]))
            row.setdefault("flagged", "")
    return list(errors.values())


def _critical_shown(table: pd.DataFrame) -> pd.DataFrame:
    """The critical table as the reader sees it: critical_df as "2.3e+05 [1.9e+05, 2.8e+05]" (its
    bootstrap interval, unclipped) or "none"; `where` with the factors beyond each method's measured
    Df, e.g. "inside fmt only; 2.3x above lora's Df" (the columns behind it stay in the CSV)."""
    shown = table.copy()
    cells, places = [], []
    for row in shown.itertuples():
        if not np.isfinite(row.critical_df):
            cells.append("none")
        elif "critical_df_low" in shown and np.isfinite(row.critical_df_low):
            cells.append(f"{row.critical_df:.3g} [{row.critical_df_low:.3g}, {row.critical_df_high:.3g}]")
        else:
            cells.append(f"{row.critical_df:.3g}")
        outside = [
            f"{factor:.3g}x {'above' if row.critical_df > high else 'below'} {method}'s Df"
            for factor, high, method in (
                (row.beyond_1, row.df_high_1, row.method_1),
                (row.beyond_2, row.df_high_2, row.method_2),
            )
            if np.isfinite(factor) and factor > 1
        ]
        places.append("; ".join([row.where] + outside))
    shown["critical_df"], shown["where"] = cells, places
    return shown.drop(
        columns=[
            c
            for c in (
                "critical_df_low",
                "critical_df_high",
                "beyond_1",
                "beyond_2",
                "df_low_1",
                "df_high_1",
                "df_low_2",
                "df_high_2",
            )
            if c in shown
        ]
    )


def heldout_summary(table: pd.DataFrame) -> str:
    """One line per kind of held-out point: mean Delta_h of both laws and how often the
    multiplicative one is lower."""
    text = ""
    for kind, rows in table.dropna(subset=["delta_h_multiplicative", "delta_h_additive"]).groupby("heldout", sort=True):
        wins = int((rows["delta_h_multiplicative"] < rows["delta_h_additive"]).sum())
        text += (
            f"\nMean Delta_h, held-out {kind}: multiplicative {rows['delta_h_multiplicative'].mean():.4g}, "
            f"additive {rows['delta_h_additive'].mean():.4g}; multiplicative lower in {wins} of {len(rows)} rows.\n"
        )
    return text


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by task, then axis and method in the paper's order (model, pretrain, pet; FMT, prompt, LoRA)."""
    if table.empty:
        return table.reset_index(drop=True)
    order = [c for c in ("task", "axis", "method", "method_1", "method_2") if c in table]
    rank = {v: i for i, v in enumerate(AXES + METHODS)}

    def key(column: pd.Series) -> pd.Series:
        return column if column.name == "task" else column.map(lambda v: rank.get(v, len(rank)))

    return table.sort_values(order, kind="stable", key=key).reset_index(drop=True)


def _with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    if "beyond_1" in table:
        table = _critical_shown(table)
    shown = table.copy()
    for k in ("A", "alpha", "beta", "E", "difference"):
        if f"{k}_low" in shown:
            shown[k] = [
                f"{v:.4g} [{lo:.4g}, {hi:.4g}]" for v, lo, hi in zip(shown[k], shown[f"{k}_low"], shown[f"{k}_high"])
            ]
            shown = shown.drop(columns=[f"{k}_low", f"{k}_high"])
    return shown


def markdown(name: str, table: pd.DataFrame) -> str:
    """A table as Markdown; estimates with bootstrap intervals as "0.123 [0.101, 0.140]"."""
    title = {
        "single_variable": "Fig 1 fits: L(Df) = A / Df^beta + E per model",
        "heldout_error": "Table 2/6: fitted (Delta_e) and held-out (Delta_h) mean absolute error",
        "params": "Table 4: multiplicative joint law L = A X^-alpha Df^-beta + E "
        f"({int(INTERVAL_LEVEL * 100)}% bootstrap intervals)",
        "critical": "Table 5: critical finetuning-data size, Df_c = H X^gamma when E_1 = E_2; "
        "critical_df: every crossing of the two fitted laws over all Df > 0, with where it lies "
        "against the Df each method was measured on (extrapolated: by what factor); flagged: the "
        "crossing rests on a fit the fit diagnostics flag (diagnostics: which method's, and why)",
        "leave_one_out": "Leave-one-out: mean error on the points of one X (x) or one Df (df) left out of "
        "every fit, the joint law refitted without them",
        "law_comparison": "Table 2's question with its uncertainty: mean Delta_h, multiplicative minus "
        f"additive, per task ({int(INTERVAL_LEVEL * 100)}% paired-bootstrap interval; "
        "p_multiplicative_lower: share of replicates where the multiplicative law is lower)",
        "correlation": "Table 7: Pearson correlation of test loss with the generation metric",
        "which_method": "Best method predicted by the multiplicative fits, with bootstrap probability",
        "which_model": "Which base model? Model sizes ranked by the loss predicted at the largest Df from "
        "the runs below it (ftscale select with analysis.which_model.law; column law: the law each row used), "
        "beside the observed loss",
    }[name]
    if table.empty:
        return f"## {title}\n\n*No results: too few points for this analysis.*\n"
    text = f"## {title}\n\n" + _with_intervals(table).to_markdown(index=False, floatfmt=".4g") + "\n"
    if name == "heldout_error":
        text += heldout_summary(table)
    return text


def _json_ready(value):
    """NaN and inf become null; numpy scalars and arrays become Python values."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


class AnalysisResults(dict):
    """The tables by name (a dict of DataFrames); `.fits` holds the dict written to fits.json."""

    fits: dict


def run_analysis(
    metrics: pd.DataFrame, pretrain: pd.DataFrame | None, options: dict | None, out_dir: Path
) -> AnalysisResults:
    """Fit everything and write into out_dir: each table of TABLES as .csv and .md, and fits.json."""
    ensure_log_output()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = analyze(metrics, options, pretrain)
    results = AnalysisResults()
    for name, table in tables(fits).items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
        (out_dir / f"{name}.md").write_text(markdown(name, table))
        results[name] = table
    results.fits = _json_ready(fits)
    (out_dir / "fits.json").write_text(json.dumps(results.fits, indent=1, allow_nan=False))
    return results
