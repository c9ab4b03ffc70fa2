"""Fig 5 as the paper draws it: the critical finetuning-data size between two methods as a
continuous function of X (model size, pretraining tokens) over the axis' X range, from the fitted
multiplicative laws (ftscale.analysis.comparison). Every crossing is drawn, in a line style that
says where it lies: solid where both methods were measured at Df around it, dashed where one was,
dotted beyond both. The critical table's values at the measured X carry their bootstrap intervals;
each method's measured Df is a grey band. The view spans the measured Df widened by VIEW_MARGIN;
a crossing beyond it is counted in the panel (its number is in critical.csv). A pair whose
crossings rest on a fit that ftscale.fitting.diagnostics flags (either method's) is drawn over a
red halo, with hollow markers and the reason in red, as critical.csv's `flagged` column says."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ftscale.analysis import comparison
from ftscale.figures.panels import (
    AXIS_LABELS,
    FLAG_COLOUR,
    empty_panel,
    factor_ticks,
    flag_note,
    panels,
    save_figure,
)

PAIR_STYLE = {("fmt", "prompt"): "tab:blue", ("fmt", "lora"): "tab:orange", ("prompt", "lora"): "tab:green"}
ONE_METHOD = "inside one"
LINE_STYLE = {comparison.INSIDE_BOTH: "-", ONE_METHOD: "--", comparison.EXTRAPOLATED: ":"}
VIEW_MARGIN = (1e-2, 1e4)  # the view: measured Df from 100x below the smallest to 1e4x above the largest
CURVE_POINTS = 80  # X values along each curve
FLAGGED_LABEL = "rests on a flagged fit"  # the legend's entry for the halo under a flagged pair's curves
HALO = {"color": FLAG_COLOUR, "lw": 5, "alpha": 0.3, "solid_capstyle": "butt", "gid": "flagged"}


def critical_figure(fits: dict, out_dir) -> None:
    """A panel per task and axis (model, pretrain) with every pair of methods that has joint fits."""
    pairs = {}
    for task, axis, fit_1, fit_2 in comparison.method_pairs(fits.get("joint", [])):
        pairs.setdefault((task, axis), []).append((fit_1, fit_2))
    tasks = sorted({task for task, _ in pairs})
    axes_drawn = [axis for axis in ("model", "pretrain") if any(a == axis for _, a in pairs)]
    fig, axes = panels(
        len(tasks),
        len(axes_drawn),
        "Fig 5: critical finetuning-data size between methods from "
        "the fitted laws, every crossing (line: where it lies; markers: "
        "the measured X with bootstrap intervals; grey: measured Df; red halo: "
        "the crossing rests on a flagged fit)",
    )
    if not tasks:
        empty_panel(axes[0][0], "no pair of methods with joint fits")
    rows = pd.DataFrame(fits.get("critical", []))
    for i, task in enumerate(tasks):
        for j, axis in enumerate(axes_drawn):
            ax, panel_pairs = axes[i, j], pairs.get((task, axis), [])
            drawn = [pair for pair in panel_pairs if critical_panel(ax, *pair, rows)]
            if not drawn:
                why = "no two methods fitted" if not panel_pairs else "the methods' laws never cross"
                empty_panel(ax, f"{task} / {axis}\n{why}")
                continue
            fits_here = [fit for pair in panel_pairs for fit in pair]
            view = _view(ax, fits_here)
            _outside_note(ax, drawn, view)
            factor_ticks(ax, [x for fit in fits_here for x in fit["x_values"]])
            ax.set(title=f"{task} / {axis}", xlabel=AXIS_LABELS[axis], ylabel="critical Df")
            ax.title.set_fontsize(8)
            flagged = comparison.resting_on(*{id(fit): fit for pair in drawn for fit in pair}.values())
            if flagged["flagged"]:
                flag_note(ax, flagged["diagnostics"])
            pairs_drawn = [(f1["method"], f2["method"]) for f1, f2 in drawn]
            ax.legend(handles=legend(pairs_drawn, flagged["flagged"]), fontsize=6)
    save_figure(fig, out_dir, "fig05_critical_size")


def critical_panel(ax, fit_1: dict, fit_2: dict, rows: pd.DataFrame) -> bool:
    """One pair's crossings against X; False (nothing drawn) when its laws never cross there. A pair
    resting on a flagged fit (comparison.resting_on) is drawn over a red halo, its markers hollow."""
    first, second = fit_1["method"], fit_2["method"]
    flagged = comparison.resting_on(fit_1, fit_2)["flagged"]
    colour = PAIR_STYLE.get((first, second))
    xs = sorted(set(fit_1["x_values"]) | set(fit_2["x_values"]))
    grid = np.geomspace(xs[0], xs[-1], CURVE_POINTS) if xs[-1] > xs[0] else np.array(xs, float)
    values, where = comparison.critical_curve(fit_1, fit_2, grid)
    if not np.isfinite(values).any():
        return False
    kind = np.where(np.isin(where, list(LINE_STYLE)), where, ONE_METHOD)
    for slot in range(values.shape[1]):
        if flagged and np.isfinite(values[:, slot]).any():
            ax.plot(grid, values[:, slot], zorder=1, **HALO)
        for style_kind, style in LINE_STYLE.items():
            on = kind[:, slot] == style_kind
            on |= np.r_[False, on[:-1]] | np.r_[on[1:], False]  # reach the neighbours: no gap between styles
            y = np.where(on, values[:, slot], np.nan)
            if np.isfinite(y).any():
                ax.plot(grid, y, linestyle=style, color=colour, lw=1.2)
    if len(rows):  # the table's values at the measured X, with their bootstrap intervals
        measured = rows[
            (rows.task == fit_1["task"])
            & (rows.axis == fit_1["axis"])
            & (rows.method_1 == first)
            & (rows.method_2 == second)
        ]
        y = pd.to_numeric(measured["critical_df"], errors="coerce").to_numpy(float)
        bounds = [
            pd.to_numeric(measured[c], errors="coerce").to_numpy(float) if c in measured else y
            for c in ("critical_df_low", "critical_df_high")
        ]
        shown = np.isfinite(y)
        ax.errorbar(
            measured["x"].to_numpy(float)[shown],
            y[shown],
            fmt="o",
            color=colour,
            mfc="none" if flagged else colour,
            ms=3,
            lw=0.8,
            capsize=2,
            yerr=[(y - np.fmin(y, bounds[0]))[shown], (np.fmax(y, bounds[1]) - y)[shown]],
        )
    return True


def _view(ax, fits: list[dict]) -> tuple[float, float]:
    """Log y axis over the measured Df widened by VIEW_MARGIN, each method's measured Df a grey band."""
    ranges = {}
    for fit in fits:
        ranges.setdefault(comparison.measured_df_range(fit), []).append(fit["method"])
    for (low, high), methods in ranges.items():
        ax.axhspan(low, high, color="gray", alpha=0.1, lw=0)
        ax.text(
            0.01,
            high,
            ", ".join(dict.fromkeys(methods)) + " Df",
            transform=ax.get_yaxis_transform(),
            fontsize=6,
            color="gray",
            va="top",
        )
    view = (min(low for low, _ in ranges) * VIEW_MARGIN[0], max(high for _, high in ranges) * VIEW_MARGIN[1])
    ax.set_yscale("log")
    ax.set_ylim(*view)
    return view


def _outside_note(ax, pairs: list[tuple[dict, dict]], view: tuple[float, float]) -> None:
    """How many of the drawn curves' crossings at the measured X lie outside the view."""
    outside = 0
    for fit_1, fit_2 in pairs:
        values, _ = comparison.critical_curve(fit_1, fit_2, sorted(set(fit_1["x_values"]) | set(fit_2["x_values"])))
        outside += int(np.sum(np.isfinite(values) & ((values < view[0]) | (values > view[1]))))
    if outside:
        ax.text(
            0.99,
            0.02,
            f"{outside} crossing(s) at the measured X beyond this view: critical.csv",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
            color="gray",
        )


def legend(pairs: list[tuple[str, str]], flagged: bool = False) -> list[Line2D]:
    """A panel's legend: the pairs' colours, the line styles of where a crossing lies, and the halo
    of a flagged fit when the panel has one."""
    handles = [Line2D([], [], color=PAIR_STYLE.get(pair), label=f"{pair[0]} vs {pair[1]}") for pair in pairs]
    handles += [Line2D([], [], color="black", linestyle=style, label=kind) for kind, style in LINE_STYLE.items()]
    if flagged:
        handles.append(Line2D([], [], label=FLAGGED_LABEL, **{k: v for k, v in HALO.items() if k != "gid"}))
    return handles
