"""What every figure module draws with: matplotlib on Agg, panel grids, empty panels, log axes
labelled at the measured values, fitted and held-out markers, saving as PNG and PDF. Its own module
so that ftscale.figures.paper and ftscale.figures.generation both import it and not each other.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - pyplot on Agg, for every figure module
import numpy as np  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

AXIS_LABELS = {
    "model": "model parameters",
    "pretrain": "pretraining tokens",
    "pet": "PET size (prompt length / LoRA rank)",
}  # the x axis of each scaling factor
FLAG_COLOUR = "red"  # what marks a flagged fit in every figure


def save_figure(fig, out_dir: Path, name: str) -> None:
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(out_dir / f"{name}.{ext}", dpi=110)
    plt.close(fig)


def panels(rows: int, columns: int, title: str):
    fig, axes = plt.subplots(
        max(1, rows), max(1, columns), figsize=(4.2 * max(1, columns), 3.3 * max(1, rows)), squeeze=False
    )
    width = 55 * max(1, columns)  # characters that fit above the panels: no title runs off the figure
    fig.suptitle("\n".join(line for part in title.split("\n") for line in textwrap.wrap(part, width)), fontsize=10)
    return fig, axes


def empty_panel(ax, text: str) -> None:
    """A panel with nothing to show: its reason in grey, and no frame or axes to misread."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray", wrap=True)
    ax.axis("off")


def flag_note(ax, reasons: str) -> None:
    """A panel's flagged fits (ftscale.fitting.diagnostics), "FLAGGED: <reasons>" in red at its top left."""
    ax.text(
        0.02,
        0.97,
        textwrap.fill("FLAGGED: " + reasons, 60),
        transform=ax.transAxes,
        fontsize=6,
        color=FLAG_COLOUR,
        va="top",
        bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
    )


def short_number(value: float) -> str:
    """51K, 1.5M, 283B: tick labels and legends that stay short."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def factor_ticks(ax, values) -> None:
    """A log x axis labelled at the measured values (not matplotlib's minor-tick labels, which
    overlap when the values span less than a decade), thinned so labels are at least 1/8 of the
    axis's log span apart."""
    values = sorted({float(v) for v in np.asarray(values, float) if np.isfinite(v) and v > 0})
    ax.set_xscale("log")
    if not values:
        return
    gap = (np.log(values[-1]) - np.log(values[0])) / 8
    kept = [values[0]]
    for value in values[1:]:
        if np.log(value) - np.log(kept[-1]) >= gap:
            kept.append(value)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(kept, [short_number(v) for v in kept])


def scatter_points(ax, df, loss, held, colour) -> None:
    df, loss, held = np.asarray(df, float), np.asarray(loss, float), np.asarray(held, bool)
    ax.scatter(df[~held], loss[~held], color=colour, s=20, zorder=3)
    ax.scatter(df[held], loss[held], facecolors="none", edgecolors=colour, s=26, zorder=3)
