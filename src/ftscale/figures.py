"""The paper's figures from a study's runs and fits (PNG and PDF). Each file always exists: a panel
without data says so, so the workflow's outputs are fixed whatever the grid."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftscale import analysis, fitting  # noqa: E402

METHODS = ("fmt", "prompt", "lora")
AXIS_FIGURES = {"model": ("fig02_model_size", "model parameters"),
                "pretrain": ("fig03_pretrain_data", "pretraining tokens"),
                "pet": ("fig04_pet_size", "PET size")}


def _save(fig, out_dir: Path, name: str) -> None:
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out_dir / f"{name}.{ext}", dpi=110)
    plt.close(fig)


def _grid(tasks: list[str], title: str):
    rows = max(1, len(tasks))
    fig, axes = plt.subplots(rows, len(METHODS), figsize=(4.2 * len(METHODS), 3.3 * rows), squeeze=False)
    fig.suptitle(title)
    return fig, axes


def _empty(ax, text="no data for this panel") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _curves(ax, means: pd.DataFrame, law: str, params_of, label_of) -> None:
    """Points (held-out hollow) and fitted curves of loss vs Df, one colour per X."""
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, means["x"].nunique())))
    df_line = np.geomspace(means["finetune_examples"].min(), means["finetune_examples"].max(), 50)
    for colour, (x, group) in zip(colours, means.groupby("x")):
        for held, marker_face in ((False, colour), (True, "none")):
            part = group[group["heldout"] == held]
            ax.scatter(part["finetune_examples"], part["test_loss"], color=colour, facecolors=marker_face, s=22)
        params = params_of(x)
        if params:
            ax.plot(df_line, fitting.predict(law, params, df_line, x), color=colour, lw=1, label=label_of(x, group))
    ax.set_xscale("log")
    ax.set_xlabel("finetuning examples (Df)")
    ax.set_ylabel("test loss")
    ax.legend(fontsize=6)


def _label(x: float) -> str:
    return f"{x:.3g}"


def single_variable_figure(runs, fits, out_dir) -> None:
    tasks = sorted(runs["task"].unique())
    fig, axes = _grid(tasks, "Fig 1: single-variable fits L(Df) = A/Df^beta + E, one curve per model size")
    fitted = {(f["task"], f["method"], f["params"]): f for f in fits["single_variable"]}
    for row, task in enumerate(tasks):
        for col, method in enumerate(METHODS):
            ax = axes[row, col]
            points = analysis.axis_points(runs[(runs.task == task) & (runs.method == method)], "model",
                                          fits["options"]["heldout"])
            if points.empty:
                _empty(ax)
                continue
            means = analysis.condition_means(points)
            _curves(ax, means, "power", lambda x: fitted.get((task, method, x)),
                    lambda x, g: f"{_label(x)} params")
            ax.set_title(f"{task} / {method}", fontsize=9)
    _save(fig, out_dir, "fig01_single_variable")


def joint_figure(runs, fits, axis: str, out_dir) -> None:
    name, x_label = AXIS_FIGURES[axis]
    tasks = sorted(runs["task"].unique())
    fig, axes = _grid(tasks, f"{name[:5].replace('fig0', 'Fig ')}: L = A X^-alpha Df^-beta + E, X = {x_label}")
    fitted = {(f["task"], f["method"]): f for f in fits["joint"] if f["axis"] == axis and f["law"] == "multiplicative"}
    for row, task in enumerate(tasks):
        for col, method in enumerate(METHODS):
            ax, fit = axes[row, col], fitted.get((task, method))
            if fit is None:
                _empty(ax, "no fit on this axis")
                continue
            points = analysis.axis_points(runs[(runs.task == task) & (runs.method == method)], axis,
                                          fits["options"]["heldout"])
            _curves(ax, analysis.condition_means(points), "multiplicative", lambda x: fit["params"],
                    lambda x, g: f"X={_label(x)}")
            p = fit["params"]
            ax.set_title(f"{task} / {method}: alpha={p['alpha']:.3f} beta={p['beta']:.3f}", fontsize=8)
            ax.text(0.02, 0.03, f"Δe={fit['delta_e']:.4f}  Δh={fit['delta_h']:.4f}", transform=ax.transAxes, fontsize=7)
    _save(fig, out_dir, name)


def critical_figure(fits, out_dir) -> None:
    rows = pd.DataFrame(fits["critical"])
    pairs = sorted({(r["task"], r["axis"]) for r in fits["critical"]})
    fig, axes = plt.subplots(1, max(1, len(pairs)), figsize=(4.2 * max(1, len(pairs)), 3.3), squeeze=False)
    fig.suptitle("Fig 5: critical finetuning-data size between methods")
    if not pairs:
        _empty(axes[0, 0], "no pair of methods with fits")
    for ax, (task, axis) in zip(axes[0], pairs):
        part = rows[(rows.task == task) & (rows.axis == axis)]
        for (first, second), curve in part.groupby(["method_1", "method_2"]):
            ax.plot(curve["x"], curve["critical_df"], marker="o", label=f"{first} vs {second}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(AXIS_FIGURES[axis][1])
        ax.set_ylabel("critical Df")
        ax.set_title(task, fontsize=9)
        ax.legend(fontsize=6)
    _save(fig, out_dir, "fig05_critical_size")


def pretraining_figure(pretrain: pd.DataFrame, out_dir) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 3.3))
    full = pretrain.loc[pretrain.groupby("family")["pretrain_tokens"].transform("max") == pretrain["pretrain_tokens"]]
    for family, part in full.groupby("family"):
        part = part.sort_values("params")
        ax.plot(part["params"], part["val_loss"], marker="o", label=family)
    ax.set_xscale("log")
    ax.set_xlabel("model parameters")
    ax.set_ylabel("pretraining validation loss")
    ax.set_title("Fig 10: pretraining scaling (full corpus)")
    ax.legend()
    _save(fig, out_dir, "fig10_pretraining")


def draw_figures(metrics: pd.DataFrame, pretrain: pd.DataFrame, fits_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = json.loads((Path(fits_dir) / "fits.json").read_text())
    runs = analysis.usable_runs(metrics)
    single_variable_figure(runs, fits, out_dir)
    for axis in AXIS_FIGURES:
        joint_figure(runs, fits, axis, out_dir)
    critical_figure(fits, out_dir)
    pretraining_figure(pretrain, out_dir)
