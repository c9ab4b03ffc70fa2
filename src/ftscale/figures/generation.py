"""Figs 7-9: generation quality (BLEURT or BLEU and chrF, ROUGE-L) against each scaling factor.

The paper's Figs 7-9 show its generation metric (BLEURT for translation, ROUGE-L for summarization)
against each factor. A translation task's rows are BLEURT's where its runs have it
(evaluate.metrics lists bleurt), else BLEU and chrF, which stand in for it. Each panel shows the metric's
condition means (over seeds) against the factor, a line per finetuning-data size Df, and a line
of this project's (no law of the paper): the least-squares metric = a + b ln X per Df, fitted on
the points not held out (hollow points are held out, and show how far the line extrapolates). Its
slope per doubling of X, b ln 2, is in the legend.

Rows are (task, metric) pairs that have data on the axis, columns the methods that do: a task or
method without the axis gets no panel, and a figure with none says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ftscale.analysis import points
from ftscale.figures.panels import AXIS_LABELS, empty_panel, factor_ticks, panels, plt, save_figure, scatter_points
from ftscale.plan.grid import method_order

METRIC_FIGURES = {
    "model": ("fig07_metric_model_size", "Fig 7"),
    "pretrain": ("fig08_metric_pretrain_data", "Fig 8"),
    "pet": ("fig09_metric_pet_size", "Fig 9"),
}
METRIC_LABELS = {"bleurt": "BLEURT", "bleu": "BLEU", "chrf": "chrF", "rougeL": "ROUGE-L"}


def log_linear_fit(x, y) -> tuple[float, float] | None:
    """(a, b) of the least-squares line y = a + b ln x; None with fewer than two distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if len(np.unique(x[keep])) < 2:
        return None
    b, a = np.polyfit(np.log(x[keep]), y[keep], 1)
    return float(a), float(b)


def metric_means(runs: pd.DataFrame, axis: str, heldout: dict) -> pd.DataFrame:
    """Condition means of the axis's runs, with task and method: x, finetune_examples, heldout and
    the generation metrics."""
    if runs.empty or f"axis_{axis}" not in runs:
        return pd.DataFrame(columns=["task", "method", "x", "finetune_examples", "heldout"])
    tables = []
    for (task, method), group in runs.groupby(["task", "method"], sort=True):
        axis_runs = points.axis_points(group, axis, heldout)
        if len(axis_runs) and axis_runs["x"].notna().any():
            tables.append(points.condition_means(axis_runs).assign(task=task, method=method))
    return pd.concat(tables, ignore_index=True) if tables else metric_means(runs.iloc[:0], axis, heldout)


def panel_rows(means: pd.DataFrame) -> list[tuple[str, str]]:
    """(task, metric) pairs with any value on the axis: BLEURT for translation where the runs have
    it, else BLEU and chrF; ROUGE-L for summarization."""
    rows = []
    for task in sorted(set(means["task"])):
        part = means[means["task"] == task]
        present = [m for m in points.GENERATION_METRICS if m in part and part[m].notna().any()]
        rows += [(task, m) for m in present if "bleurt" not in present or m not in ("bleu", "chrf")]
    return rows


def metric_panel(ax, means: pd.DataFrame, metric: str) -> None:
    """One task and method: the metric against X, a colour per Df, each with its log-linear fit."""
    means = means[means[metric].notna()]
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, means["finetune_examples"].nunique())))
    for colour, (df, group) in zip(colours, means.groupby("finetune_examples")):
        held = group["heldout"].to_numpy(bool)
        scatter_points(ax, group["x"], group[metric], held, colour)
        fit = log_linear_fit(group["x"][~held], group[metric][~held])
        label = f"Df={df:g}"
        if fit:
            a, b = fit
            line = np.geomspace(group["x"].min(), group["x"].max(), 40)
            ax.plot(line, a + b * np.log(line), color=colour, lw=1)
            label += f": {b * np.log(2):+.2f} per 2x"
        ax.plot([], [], color=colour, marker="o", lw=1, label=label)  # legend entry: marker and line
    factor_ticks(ax, means["x"])
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.legend(fontsize=6, framealpha=0.6)


def metric_figure(runs: pd.DataFrame, axis: str, heldout: dict, out_dir: Path) -> None:
    name, label = METRIC_FIGURES[axis]
    x_label = AXIS_LABELS[axis]
    means = metric_means(runs, axis, heldout)
    rows = panel_rows(means)
    methods = method_order(set(means["method"]))
    fig, axes = panels(
        len(rows),
        len(methods),
        f"{label}: generation quality against {x_label}\nlines: least squares on log X per Df; hollow: held out",
    )
    if not rows:
        empty_panel(axes[0][0], f"no run on the {axis} axis has a generation metric")
    for i, (task, metric) in enumerate(rows):
        for j, method in enumerate(methods):
            ax, part = axes[i][j], means[(means["task"] == task) & (means["method"] == method)]
            if part[metric].notna().any():
                metric_panel(ax, part, metric)
                ax.set_title(f"{task} / {method}", fontsize=8)
                ax.set_xlabel(x_label)
            else:
                empty_panel(ax, f"{task} / {method}\nno runs on this axis")
    save_figure(fig, out_dir, name)


def draw_metric_figures(runs: pd.DataFrame, heldout: dict, out_dir: Path) -> None:
    for axis in METRIC_FIGURES:
        metric_figure(runs, axis, heldout, out_dir)
