"""The paper's figures from a study's runs and fits, each as PNG and PDF (matplotlib, Agg).

Every file always exists, whatever the grid: a panel without data (or without a fit) says so, so the
workflow's outputs are fixed (only `ftscale analyze` skips figures, those whose columns its table lacks). Fitted points are filled markers, held-out points hollow ones; fitted
curves are drawn, with Delta_e / Delta_h written in each panel; a fit that ftscale.fitting.diagnostics
flags is drawn dashed, with its reason in red. The fits come from `fits.json` (or
the value `tables.run_analysis` returns), so the figures show exactly what the tables report.
Fig 5 (critical sizes) is drawn by `ftscale.figures.critical`, Figs 7-9 (generation metrics against
each factor) by `generation`, which base model by `which_model`; all draw their panels with the
helpers of `panels`.
Past 300 lines because Figs 1-4, 6, 10 and the few-shot figures share its panel helpers here, and
draw_figures names every figure's drawer in one place.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ftscale.analysis import points, procedure
from ftscale.figures import critical, generation, which_model
from ftscale.figures.generation import METRIC_LABELS
from ftscale.figures.panels import (
    AXIS_LABELS,
    empty_panel,
    factor_ticks,
    flag_note,
    panels,
    plt,
    save_figure,
    scatter_points,
    short_number,
)
from ftscale.fitting import laws
from ftscale.fitting.diagnostics import describe
from ftscale.outputs import FIGURES
from ftscale.plan.grid import METHODS, method_order

AXIS_FIGURES = {
    "model": ("fig02_model_size", "Fig 2", AXIS_LABELS["model"]),
    "pretrain": ("fig03_pretrain_data", "Fig 3", AXIS_LABELS["pretrain"]),
    "pet": ("fig04_pet_size", "Fig 4", AXIS_LABELS["pet"]),
}


def load_fits(fits_dir_or_results) -> dict:
    """fits.json's dict from a directory holding it, its path, run_analysis's result, or the dict."""
    if hasattr(fits_dir_or_results, "fits"):
        return fits_dir_or_results.fits
    if isinstance(fits_dir_or_results, dict):
        return fits_dir_or_results
    path = Path(fits_dir_or_results)
    return json.loads((path / "fits.json" if path.is_dir() else path).read_text())


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def _fmt(value, digits: int = 4) -> str:
    value = _number(value)
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _loss_axes(ax, title: str, df_values) -> None:
    factor_ticks(ax, df_values)
    ax.set_xlabel("finetuning examples (Df)")
    ax.set_ylabel("test loss")
    ax.set_title(title, fontsize=8)


def _deltas_text(ax, delta_e, delta_h) -> None:
    ax.text(
        0.02,
        0.03,
        f"Δe={_fmt(delta_e)}  Δh={_fmt(delta_h)}",
        transform=ax.transAxes,
        fontsize=7,
        bbox={"facecolor": "white", "alpha": 0.7, "lw": 0},
    )


def _flagged(fit_row: dict) -> bool:
    return bool((fit_row.get("diagnostics") or {}).get("flagged"))


def _flag_text(ax, fit_rows: list[dict]) -> None:
    """A flagged fit (ftscale.fitting.diagnostics) says so in red in its panel; its curves are dashed."""
    reasons = [describe(r["diagnostics"]) for r in fit_rows if _flagged(r)]
    if reasons:
        flag_note(ax, " | ".join(dict.fromkeys(reasons)))


def _raw_points(ax, runs, task, method, axis, heldout) -> bool:
    """Means of an axis that has runs but no fit: drawn without curves. False when there are none."""
    axis_runs = points.axis_points(runs[(runs.task == task) & (runs.method == method)], axis, heldout)
    if axis_runs.empty or axis_runs["x"].isna().all():
        return False
    means = points.condition_means(axis_runs)
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, means["x"].nunique())))
    for colour, (_, group) in zip(colours, means.groupby("x")):
        scatter_points(ax, group["finetune_examples"], group["test_loss"], group["heldout"], colour)
    ax.text(0.5, 0.92, "not fitted: too few points", transform=ax.transAxes, ha="center", fontsize=7, color="gray")
    return True


def _tasks_methods(runs: pd.DataFrame, fits: dict) -> tuple[list[str], list[str]]:
    tasks = set(runs["task"]) | {r["task"] for r in fits.get("joint", []) + fits.get("single_variable", [])}
    methods = set(runs["method"]) | {r["method"] for r in fits.get("joint", [])}
    return sorted(tasks), method_order(methods or METHODS)


def single_variable_figure(runs, fits, out_dir) -> None:
    tasks, methods = _tasks_methods(runs, fits)
    fig, axes = panels(
        len(tasks), len(methods), "Fig 1: L(Df) = A / Df^beta + E, one fit per model size (hollow: held out)"
    )
    by_panel = {}
    for row in fits.get("single_variable", []):
        by_panel.setdefault((row["task"], row["method"]), []).append(row)
    for i, task in enumerate(tasks):
        for j, method in enumerate(methods):
            ax, rows = axes[i, j], sorted(by_panel.get((task, method), []), key=lambda r: r["params"])
            if not rows:
                if not _raw_points(ax, runs, task, method, "model", fits["options"]["heldout"]):
                    empty_panel(ax, f"{task} / {method}\nno data")
                    continue
            colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(rows))))
            for colour, row in zip(colours, rows):
                p = row["points"]
                scatter_points(ax, p["finetune_examples"], p["loss"], p["heldout"], colour)
                line = np.geomspace(min(p["finetune_examples"]), max(p["finetune_examples"]), 60)
                ax.plot(
                    line,
                    laws.predict("power", row, line),
                    color=colour,
                    lw=1,
                    ls="--" if _flagged(row) else "-",
                    label=f"{row['model']} ({short_number(row['params'])}): β={row['beta']:.3f}"
                    + (" (flagged)" if _flagged(row) else ""),
                )
            _loss_axes(ax, f"{task} / {method}", _df_values(runs, task, method))
            if rows:
                ax.legend(fontsize=6)
                _deltas_text(ax, _nanmean([r["delta_e"] for r in rows]), _nanmean([r["delta_h"] for r in rows]))
                _flag_text(ax, rows)
    save_figure(fig, out_dir, "fig01_single_variable")


def _df_values(runs: pd.DataFrame, task: str, method: str):
    return runs.loc[(runs.task == task) & (runs.method == method), "finetune_examples"]


def _nanmean(values) -> float:
    values = np.array([_number(v) for v in values])
    return float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")


def joint_figure(runs, fits, axis: str, out_dir) -> None:
    name, label, x_label = AXIS_FIGURES[axis]
    tasks, methods = _tasks_methods(
        runs[points.as_bool(runs[f"axis_{axis}"])],
        {"joint": [f for f in fits.get("joint", []) if f["axis"] == axis]},
    )  # only what has this axis
    fig, axes = panels(
        len(tasks),
        len(methods),
        f"{label}: L = A X^-alpha Df^-beta + E, X = {x_label} (one curve per X; hollow: held out)",
    )
    fitted = {
        (f["task"], f["method"]): f for f in fits.get("joint", []) if f["axis"] == axis and f["law"] == "multiplicative"
    }
    for i, task in enumerate(tasks):
        for j, method in enumerate(methods):
            ax, fit = axes[i, j], fitted.get((task, method))
            if fit is None:
                if not _raw_points(ax, runs, task, method, axis, fits["options"]["heldout"]):
                    empty_panel(ax, f"{task} / {method}\nno {axis} axis in this study")
                else:
                    _loss_axes(ax, f"{task} / {method}", _df_values(runs, task, method))
                continue
            p, fitted_points = fit["params"], pd.DataFrame(fit["points"])
            colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, fitted_points["x"].nunique())))
            line = np.geomspace(fitted_points["finetune_examples"].min(), fitted_points["finetune_examples"].max(), 60)
            for colour, (x, group) in zip(colours, fitted_points.groupby("x")):
                scatter_points(ax, group["finetune_examples"], group["loss"], group["heldout"], colour)
                ax.plot(
                    line,
                    laws.predict("multiplicative", p, line, x),
                    color=colour,
                    lw=1,
                    ls="--" if _flagged(fit) else "-",
                    label=f"X={short_number(x)}",
                )
            _loss_axes(
                ax,
                f"{task} / {method}: α={p['alpha']:.4f} β={p['beta']:.3f} E={p['E']:.3f}",
                fitted_points["finetune_examples"],
            )
            ax.legend(fontsize=6)
            _deltas_text(ax, fit["delta_e"], fit["delta_h"])
            _flag_text(ax, [fit])
    save_figure(fig, out_dir, name)


def pretraining_figure(pretrain: pd.DataFrame | None, fits, out_dir) -> None:
    fig, axes = panels(1, 2, "Fig 10: pretraining scaling")
    by_size, by_tokens = axes[0]
    if pretrain is None or len(pretrain) == 0:
        empty_panel(by_size, "no pretraining table")
        empty_panel(by_tokens, "no pretraining table")
        save_figure(fig, out_dir, "fig10_pretraining")
        return
    if "status" in pretrain:
        pretrain = pretrain[pretrain["status"] == "ok"]
    family_fits = {row["family"]: row.get("fit") for row in fits.get("pretraining", [])}
    for colour, (family, table) in zip(plt.cm.tab10.colors, pretrain.groupby("family", sort=True)):
        full = table.loc[table.groupby("model")["pretrain_tokens"].idxmax()].sort_values("params")
        held = full["model"].isin(fits["options"]["heldout"].get("pretraining", [])).to_numpy()
        by_size.plot(full["params"][~held], full["val_loss"][~held], "o", color=colour, label=family)
        if held.any():  # analysis.heldout.pretraining: hollow, the law extrapolates to them
            by_size.plot(
                full["params"][held], full["val_loss"][held], "o", mfc="none", color=colour, label=f"{family}: held out"
            )
        law = family_fits.get(family)
        if law:
            line = np.geomspace(full["params"].min(), full["params"].max(), 60)
            missed = f" Δh={_fmt(law.get('delta_h'))}" if held.any() else ""
            by_size.plot(
                line,
                law["A"] * line ** -law["alpha"] + law["E"],
                color=colour,
                lw=1,
                ls="--" if _flagged(law) else "-",
                label=f"{family}: α={law['alpha']:.3f} E={law['E']:.3f}{missed}",
            )
            _flag_text(by_size, [law])
        for model, runs in table.groupby("model"):
            if runs["pretrain_tokens"].nunique() >= 2:
                runs = runs.sort_values("pretrain_tokens")
                by_tokens.plot(
                    runs["pretrain_tokens"], runs["val_loss"], marker="o", color=colour, label=f"{family} {model}"
                )
    factor_ticks(by_size, pretrain["params"])
    by_size.set(xlabel="model parameters", ylabel="pretraining validation loss", title="full corpus, by model size")
    by_size.legend(fontsize=6)
    if by_tokens.lines:
        factor_ticks(by_tokens, pretrain["pretrain_tokens"])
        by_tokens.set(xlabel="pretraining tokens", ylabel="pretraining validation loss", title="by pretraining tokens")
        by_tokens.legend(fontsize=6)
    else:
        empty_panel(by_tokens, "no model pretrained on several token counts")
    save_figure(fig, out_dir, "fig10_pretraining")


def _axis_runs(runs: pd.DataFrame, axis: str, column: str) -> pd.DataFrame:
    """Runs of an axis that have `column` (a transfer metric)."""
    if column not in runs:
        return runs.iloc[:0]
    return runs[points.as_bool(runs[f"axis_{axis}"]) & pd.to_numeric(runs[column], errors="coerce").notna()]


def zero_shot_figure(runs: pd.DataFrame, out_dir) -> None:
    """Fig 6: zero-shot BLEU (mean over the unseen source languages) by model size, a line per Df."""
    data = _axis_runs(runs, "model", "zero_shot_bleu")
    tasks, methods = sorted(set(data["task"])), method_order(set(data["method"]))
    fig, axes = panels(len(tasks), len(methods), "Fig 6: zero-shot translation after finetuning, by model size")
    if data.empty:
        empty_panel(axes[0][0], "no zero-shot evaluation in this study (evaluate.transfer)")
    for row, task in enumerate(tasks):
        for column, method in enumerate(methods):
            ax, sub = axes[row][column], data[(data.task == task) & (data.method == method)]
            means = sub.groupby(["finetune_examples", "params"])["zero_shot_bleu"].mean().reset_index()
            colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, means["finetune_examples"].nunique())))
            for colour, (df, group) in zip(colours, means.groupby("finetune_examples")):
                ax.plot(group["params"], group["zero_shot_bleu"], marker="o", color=colour, label=f"Df={df}")
            factor_ticks(ax, means["params"])
            ax.set(xlabel="model parameters", ylabel="zero-shot BLEU (mean)")
            ax.set_title(f"{task} / {method}", fontsize=8)
            ax.legend(fontsize=6)
    save_figure(fig, out_dir, "fig06_zero_shot")


FEW_SHOT_FIGURES = {
    "model": ("fig11_few_shot", "params", "model parameters"),
    "pretrain": ("fig13_few_shot_pretrain_data", "pretrain_tokens", "pretraining tokens"),
}
# the scores few-shot panels draw, as transfer.json's few_shot_<k>_<metric> names them: the paper's
# for translation (BLEURT, which transfer does not compute: BLEU stands in) and summarization
FEW_SHOT_METRICS = ("bleu", "rougeL")


def base_models_of(base: pd.DataFrame, task: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of base_transfer.csv for the base models these runs of `task` were finetuned from
    (its other rows belong to the other axis)."""
    behind = set(zip(runs["model"], runs["pretrain_tokens"]))
    of_runs = np.array([key in behind for key in zip(base["model"], base["pretrain_tokens"])], dtype=bool)
    return base[(base["task"] == task).to_numpy() & of_runs]


def tasks_with_a_curve(tables, x_column: str) -> list[str]:
    """Tasks with runs at two or more values of x_column in any table: the condition shared by
    every axis alone is no curve."""
    return sorted({task for table in tables for task, runs in table.groupby("task") if runs[x_column].nunique() >= 2})


def few_shot_scores(columns) -> list[tuple[int, str]]:
    """(k, metric) of the columns `few_shot_<k>_<metric>` among `columns` that a few-shot panel draws
    (FEW_SHOT_METRICS: BLEU for translation, ROUGE-L for summarization), by k."""
    found = []
    for column in columns:
        parts = column.split("_")
        if len(parts) == 4 and parts[:2] == ["few", "shot"] and parts[2].isdigit() and parts[3] in FEW_SHOT_METRICS:
            found.append((int(parts[2]), parts[3]))
    return sorted(found, key=lambda score: (score[0], FEW_SHOT_METRICS.index(score[1])))


def few_shot_runs(runs: pd.DataFrame, axis: str) -> dict[tuple[int, str], pd.DataFrame]:
    """{(k, metric): the axis's runs with that few-shot score}."""
    return {
        (k, metric): _axis_runs(runs, axis, f"few_shot_{k}_{metric}") for k, metric in few_shot_scores(runs.columns)
    }


def few_shot_rows(data: dict[tuple[int, str], pd.DataFrame], x_column: str) -> list[tuple[str, tuple[int, str]]]:
    """The few-shot figure's rows: (task, (k, metric)) for each task with a curve along x_column and
    each score its runs have (a summarization task's ROUGE-L, a translation task's BLEU)."""
    tasks = tasks_with_a_curve(data.values(), x_column)
    return [(task, score) for task in tasks for score, table in data.items() if (table.task == task).any()]


def few_shot_figure(runs: pd.DataFrame, base: pd.DataFrame | None, axis: str, out_dir) -> None:
    """k-shot quality (BLEU for translation, ROUGE-L for summarization) against the axis's factor, a
    panel per task and k (rows) and method (columns): a line per finetuning-data size (the paper's
    question: does more finetuning data lower few-shot quality?), and the base models of the same
    runs (dashed). A task gets the rows of the scores its runs have."""
    name, x_column, x_label = FEW_SHOT_FIGURES[axis]
    data = few_shot_runs(runs, axis)
    rows = few_shot_rows(data, x_column)
    methods = method_order({m for table in data.values() for m in table["method"]})
    fig, axes = panels(
        len(rows),
        len(methods),
        f"Few-shot prompting after finetuning, by {x_label}: a line per finetuning-data size (Df), "
        "the base models (dashed) as baseline",
    )
    if not rows:
        empty_panel(
            axes[0][0], f"no few-shot evaluation at two or more {x_label}\n(add {axis} to evaluate.transfer.axes)"
        )
    for row, (task, (k, metric)) in enumerate(rows):
        score = f"few_shot_{k}_{metric}"
        sub = data[(k, metric)][data[(k, metric)].task == task]
        baseline = base_models_of(base, task, sub) if base is not None and score in base else None
        for column, method in enumerate(methods):
            ax = axes[row][column]
            if not few_shot_panel(ax, sub[sub.method == method], baseline, x_column, score):
                empty_panel(ax, f"{task} / {method}: no {k}-shot runs")
                continue
            factor_ticks(ax, sub[x_column])
            ax.set(xlabel=x_label, ylabel=f"{k}-shot {METRIC_LABELS[metric]}")
            ax.set_title(f"{task} / {method}: {k}-shot", fontsize=8)
            ax.legend(fontsize=5, ncol=2)
    save_figure(fig, out_dir, name)


def few_shot_panel(ax, runs: pd.DataFrame, baseline: pd.DataFrame | None, x_column: str, score: str) -> int:
    """One method's k-shot score (`score`, mean over seeds) against x_column, a line per Df (light to
    dark: small to large), the base models dashed; returns the number of Df lines drawn."""
    means = runs.groupby(["finetune_examples", x_column])[score].mean().reset_index()
    sizes = sorted(means["finetune_examples"].unique())
    for colour, df in zip(plt.cm.viridis(np.linspace(0.9, 0, max(1, len(sizes)))), sizes):
        line = means[means["finetune_examples"] == df]
        ax.plot(line[x_column], line[score], marker="o", ms=3, color=colour, label=f"Df={short_number(df)}")
    if sizes and baseline is not None and len(baseline):
        baseline = baseline.sort_values(x_column)
        ax.plot(baseline[x_column], baseline[score], "k--", marker="s", ms=3, label="base model")
    return len(sizes)


def draw_figures(
    metrics: pd.DataFrame,
    pretrain: pd.DataFrame | None,
    fits_dir_or_results,
    out_dir: Path,
    base_transfer: pd.DataFrame | None = None,
    skip=(),
) -> list[Path]:
    """Write every figure of FIGURES but those named in `skip` as .png and .pdf into out_dir;
    returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = load_fits(fits_dir_or_results)
    fits.setdefault("options", procedure.resolve_options({}))
    with warnings.catch_warnings():  # run_analysis already warned about the diverged runs
        warnings.simplefilter("ignore", UserWarning)
        runs = points.usable_runs(metrics)
    heldout = fits["options"]["heldout"]
    drawers = {
        "fig01_single_variable": lambda: single_variable_figure(runs, fits, out_dir),
        "fig05_critical_size": lambda: critical.critical_figure(fits, out_dir),
        "fig06_zero_shot": lambda: zero_shot_figure(runs, out_dir),
        "fig10_pretraining": lambda: pretraining_figure(pretrain, fits, out_dir),
        "which_base_model": lambda: which_model.which_model_figure(fits, out_dir),
    }
    for axis, (name, _, _) in AXIS_FIGURES.items():
        drawers[name] = partial(joint_figure, runs, fits, axis, out_dir)
    for axis, (name, _) in generation.METRIC_FIGURES.items():
        drawers[name] = partial(generation.metric_figure, runs, axis, heldout, out_dir)
    for axis, (name, _, _) in FEW_SHOT_FIGURES.items():
        drawers[name] = partial(few_shot_figure, runs, base_transfer, axis, out_dir)
    drawn = [name for name in FIGURES if name not in skip]
    for name in drawn:
        drawers[name]()
    return [out_dir / f"{name}.{ext}" for name in drawn for ext in ("png", "pdf")]
