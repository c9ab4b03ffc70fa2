"""Which base model (`which_base_model`; not one of the paper's figures): the loss `ftscale select`
predicts for each model size at the largest Df (from the runs below it) against the observed loss,
from fits.json's which_model rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftscale.figures.panels import empty_panel, panels, plt, save_figure
from ftscale.plan.grid import method_order


def which_model_figure(fits, out_dir) -> None:
    """Predicted (ftscale select, at the largest Df from the runs below it) vs observed loss, one
    point per model size with its bootstrap interval, one panel per task; the diagonal is perfect."""
    rows = pd.DataFrame(
        fits.get("which_model", []),
        columns=["task", "method", "model", "predicted_loss", "low", "high", "observed_loss", "target"],
    )
    rows = rows.astype({c: float for c in ("predicted_loss", "low", "high", "observed_loss")}).dropna(
        subset=["predicted_loss", "observed_loss"]
    )
    tasks = sorted(set(rows["task"]))
    fig, axes = panels(1, len(tasks), "Which base model? Predicted vs observed loss")
    if rows.empty:
        empty_panel(axes[0][0], "no model axis with two or more Df values to extrapolate from")
    for ax, task in zip(axes[0], tasks):
        sub = rows[rows.task == task]
        for colour, method in zip(plt.cm.tab10.colors, method_order(set(sub["method"]))):
            points = sub[sub.method == method]
            error = np.abs(points[["low", "high"]].to_numpy().T - points["predicted_loss"].to_numpy())
            ax.errorbar(
                points["observed_loss"],
                points["predicted_loss"],
                yerr=np.where(np.isfinite(error), error, 0.0),
                fmt="o",
                color=colour,
                label=method,
                ms=4,
            )
        span = [
            np.nanmin(sub[["observed_loss", "predicted_loss"]].to_numpy()),
            np.nanmax(sub[["observed_loss", "predicted_loss"]].to_numpy()),
        ]
        ax.plot(span, span, "k:", lw=1)
        ax.set(xlabel=f"observed loss at Df={sub['target'].iloc[0]:g}", ylabel="predicted loss")
        ax.set_title(task, fontsize=8)
        ax.legend(fontsize=6)
    save_figure(fig, out_dir, "which_base_model")
