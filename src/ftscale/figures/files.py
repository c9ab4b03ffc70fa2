"""The figures rule's whole job (`figure_files`), which `ftscale analyze` runs too: the runs,
pretraining and base-model tables read and checked (ftscale.analysis.runs_table), every figure
drawn (ftscale.figures.paper.draw_figures).

The workflow draws the figures of ftscale.outputs.study_figures (a panel without data says so);
`ftscale analyze` skips a figure whose columns its table lacks (FIGURE_COLUMNS; Fig 10 needs a
pretraining table), with a line saying why (`absent_figures`).

`analyze_files` is `ftscale analyze`'s whole job: DIR/fits and DIR/figures are written into
DIR.partial, sealed (ftscale.runtime.integrity: DIR/MANIFEST.json, each file's size and sha256),
then renamed to DIR, so a run cut short never leaves DIR looking complete: DIR is the last complete
analysis, or absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from ftscale.analysis import runs_table
from ftscale.figures import paper
from ftscale.runtime import faults, integrity

ANALYSIS_ENTRIES = {"fits", "figures", integrity.MANIFEST}  # what `ftscale analyze` writes in DIR
QUALITY = ("bleu", "chrf", "rougeL", "bleurt")
FEW_SHOT = "few_shot_<k>_bleu or few_shot_<k>_rougeL"  # any k, a score paper.FEW_SHOT_METRICS names
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
    few_shot = bool(paper.few_shot_scores(columns))
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
    runs_path,
    pretrain_path,
    fits_dir,
    out_dir,
    base_transfer_path=None,
    skip_absent: bool = False,
    skip: dict[str, str] | None = None,
) -> dict[str, str]:
    """The figures rule: draw the figures of the runs and pretraining tables and fits_dir's
    fits.json into out_dir; returns {figure: why} for those skipped (with skip_absent, the
    figures whose columns are absent; otherwise every figure is drawn) or in `skip` ({figure: why}:
    the workflow's figures without data, ftscale.outputs.study_figures)."""
    raw = runs_table.read_csv(runs_path)
    runs = runs_table.check_runs(raw, str(runs_path))
    pretrain = runs_table.read_pretrain(pretrain_path)
    base_transfer = pd.read_csv(base_transfer_path) if base_transfer_path else None
    skipped = (absent_figures(raw.columns, pretrain is not None) if skip_absent else {}) | (skip or {})
    paper.draw_figures(
        runs,
        pretrain,
        Path(fits_dir),
        Path(out_dir),
        base_transfer if base_transfer is not None and len(base_transfer) else None,
        skip=skipped,
    )
    return skipped


class OutputError(ValueError):
    """An output directory `ftscale analyze` must not replace; str() is the one line to show."""


def analyze_files(runs_path, pretrain_path, options: dict | None, out_dir) -> dict[str, str]:
    """`ftscale analyze RUNS --out DIR`: the fit rule's files into DIR/fits, the figures rule's into
    DIR/figures (figures whose columns are absent skipped: the returned {figure: why}), written in
    DIR.partial, sealed and renamed to DIR. DIR may be absent, empty or an earlier analysis (only
    fits/, figures/ and MANIFEST.json): anything else is an OutputError, and nothing is written."""
    out_dir = Path(out_dir).resolve()
    if out_dir.is_file() or (out_dir.is_dir() and {p.name for p in out_dir.iterdir()} - ANALYSIS_ENTRIES):
        raise OutputError(
            f"{out_dir}: holds other files than an analysis ({', '.join(sorted(ANALYSIS_ENTRIES))}); "
            "give --out a new or empty directory"
        )
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    runs_table.fit_files(runs_path, pretrain_path, options, partial / "fits")
    faults.point("analyze")  # the fits written, the figures not: a kill here leaves no DIR to misread
    skipped = figure_files(runs_path, pretrain_path, partial / "fits", partial / "figures", skip_absent=True)
    integrity.seal(partial)  # relative names: the manifest holds after the rename
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return skipped
