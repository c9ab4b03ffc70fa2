"""The figures rule's whole job (`figure_files`), which `ftscale analyze` runs too: the runs,
pretraining and base-model tables read and checked (ftscale.analysis.runs_table), every figure
drawn (ftscale.figures.paper.draw_figures).

The workflow draws every figure (a panel without data says so: its outputs are fixed); `ftscale
analyze` skips a figure whose columns its table lacks (FIGURE_COLUMNS; Fig 10 needs a pretraining
table), with a line saying why (`absent_figures`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ftscale.analysis import runs_table
from ftscale.figures import paper

QUALITY = ("bleu", "chrf", "rougeL", "bleurt")
FEW_SHOT = "few_shot_<k>_bleu"  # any k
# per figure, the columns it draws from, each tuple one of which must be in the table
FIGURE_COLUMNS = {
    "fig01_single_variable": [("axis_model",)],
    "fig02_model_size": [("axis_model",)],
    "fig03_pretrain_data": [("axis_pretrain",), ("pretrain_tokens",)],
    "fig04_pet_size": [("axis_pet",), ("pet_size",)],
    "fig05_critical_size": [],
    "fig06_zero_shot": [("axis_model",), ("zero_shot_bleu",)],
    "fig07_metric_model_size": [("axis_model",), QUALITY],
    "fig08_metric_pretrain_data": [("axis_pretrain",), ("pretrain_tokens",), QUALITY],
    "fig09_metric_pet_size": [("axis_pet",), ("pet_size",), QUALITY],
    "fig10_pretraining": [],
    "fig11_few_shot": [("axis_model",), (FEW_SHOT,)],
    "which_base_model": [("axis_model",)],
    "fig13_few_shot_pretrain_data": [("axis_pretrain",), ("pretrain_tokens",), (FEW_SHOT,)],
}


def absent_figures(columns, has_pretrain: bool) -> dict[str, str]:
    """{figure: why it is skipped} for the figures whose columns are not among `columns` (a runs
    table's own columns, before runs_table fills any in)."""
    columns = set(columns)
    few_shot = any(c.startswith("few_shot_") and c.endswith("_bleu") for c in columns)
    absent = {}
    for name, needs in FIGURE_COLUMNS.items():
        missing = [
            " or ".join(choice)
            for choice in needs
            if not any(c in columns or (c == FEW_SHOT and few_shot) for c in choice)
        ]
        if missing:
            absent[name] = f"the runs table has no column {missing[0]}"
    if not has_pretrain:
        absent["fig10_pretraining"] = "no pretraining table (pretrain.csv's columns) given"
    return absent


def figure_files(
    runs_path, pretrain_path, fits_dir, out_dir, base_transfer_path=None, skip_absent: bool = False
) -> dict[str, str]:
    """The figures rule: draw the figures of the runs and pretraining tables and fits_dir's
    fits.json into out_dir; returns {figure: why} for those skipped (with skip_absent, the
    figures whose columns are absent; otherwise every figure is drawn)."""
    raw = runs_table.read_csv(runs_path)
    runs = runs_table.check_runs(raw, str(runs_path))
    pretrain = runs_table.read_pretrain(pretrain_path)
    base_transfer = pd.read_csv(base_transfer_path) if base_transfer_path else None
    skipped = absent_figures(raw.columns, pretrain is not None) if skip_absent else {}
    paper.draw_figures(
        runs,
        pretrain,
        Path(fits_dir),
        Path(out_dir),
        base_transfer if base_transfer is not None and len(base_transfer) else None,
        skip=skipped,
    )
    return skipped
