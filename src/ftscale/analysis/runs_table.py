"""A runs table (metrics.csv's columns, from the workflow or from any trainer) read and checked for
the analysis, and the fit rule's whole job (`fit_files`), which `ftscale analyze` runs too.

Minimum columns (REQUIRED): a row per finetuning run with task, method, model, params (the base
model's parameter count, X of the model axis), finetune_examples (Df) and test_loss, and at least
one axis flag (axis_model, axis_pretrain, axis_pet: which scaling axes the run belongs to). Where a
column of OPTIONAL is absent it is filled in as the workflow would have written it for such runs
(no pretraining or PET axis: empty; one seed; every run ok); pretrain_tokens and pet_size are
required by the rows of the axes that vary them. A bad table is one TableError line naming the
column, or the row (as the CSV's line number) and its value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ftscale.analysis.tables import AnalysisResults, run_analysis
from ftscale.plan.grid import AXES

REQUIRED = ("task", "method", "model", "params", "finetune_examples", "test_loss")
AXIS_FLAGS = tuple(f"axis_{axis}" for axis in AXES)
OPTIONAL = {"pretrain_tokens": np.nan, "pet_size": np.nan, "seed": 0, "status": "ok"}  # value when absent
AXIS_COLUMN = {"axis_pretrain": "pretrain_tokens", "axis_pet": "pet_size"}  # what the axis' rows need
POSITIVE = ("params", "finetune_examples")
PRETRAIN_REQUIRED = ("family", "model", "params", "pretrain_tokens", "val_loss")


class TableError(ValueError):
    """A runs or pretraining table the analysis cannot read; str() is the one line to show."""


def read_csv(path) -> pd.DataFrame:
    """A CSV file as a DataFrame, or TableError naming the file."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise TableError(f"{path}: no such file")
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the table is empty")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise TableError(f"{path}: cannot read it as CSV ({str(error).splitlines()[0]})")
    return table


def check_runs(table: pd.DataFrame, name: str = "runs table") -> pd.DataFrame:
    """The runs table with OPTIONAL columns filled in; TableError on a missing column or bad row."""
    if table.empty:
        raise TableError(f"{name}: the table has no rows")
    missing = [c for c in REQUIRED if c not in table]
    if missing:
        raise TableError(
            f"{name}: column {missing[0]!r} is missing (the analysis needs "
            f"{', '.join(REQUIRED)} and one of {', '.join(AXIS_FLAGS)})"
        )
    if not any(flag in table for flag in AXIS_FLAGS):
        raise TableError(
            f"{name}: no axis column: add one of {', '.join(AXIS_FLAGS)} "
            "(true where the run belongs to that scaling axis)"
        )
    table = table.copy()
    for column, value in OPTIONAL.items():
        if column not in table:
            table[column] = value
    for flag in AXIS_FLAGS:
        table[flag] = _flags(table, flag, name) if flag in table else False
    for column in POSITIVE:
        _check_numbers(table, column, name, table[column].notna(), "a positive number", lambda v: v > 0)
    _check_numbers(
        table,
        "test_loss",
        name,
        table["test_loss"].notna(),
        "a number (empty for a failed run)",
        lambda v: ~np.isnan(v),
    )
    for flag, column in AXIS_COLUMN.items():
        _check_numbers(table, column, name, table[flag], f"a positive number on the {flag} rows", lambda v: v > 0)
    for column in ("task", "method", "model"):
        empty = table[column].isna()
        if empty.any():
            raise TableError(f"{name}: row {_line(empty)}: {column} is empty")
    return table


def _line(bad: pd.Series) -> int:
    """The CSV line of the first True row (line 1 is the header)."""
    return int(np.asarray(bad).argmax()) + 2


def _check_numbers(table, column, name, rows, what, good) -> None:
    values = pd.to_numeric(table[column], errors="coerce").astype(float)
    bad = rows.to_numpy(bool) & ~good(values.to_numpy())
    if bad.any():
        raise TableError(
            f"{name}: row {_line(bad)}: {column} is {_shown(table[column].iloc[int(bad.argmax())])}, not {what}"
        )


def _shown(value) -> str:
    return "empty" if pd.isna(value) else repr(value) if isinstance(value, str) else f"{value:g}"


def _flags(table, flag, name) -> pd.Series:
    text = table[flag].astype(str).str.strip().str.lower()
    bad = ~text.isin(["true", "false", "1", "0", "1.0", "0.0", "yes", "no"])
    if bad.any():
        raise TableError(f"{name}: row {_line(bad)}: {flag} is {table[flag][bad].iloc[0]!r}, not true or false")
    return text.isin(["true", "1", "1.0", "yes"])


def read_runs(path) -> pd.DataFrame:
    """A runs CSV read and checked (check_runs)."""
    return check_runs(read_csv(path), str(path))


def read_pretrain(path) -> pd.DataFrame | None:
    """A pretraining table (pretrain.csv's columns: PRETRAIN_REQUIRED, optional status) or None
    without a path; TableError naming a missing column."""
    if path is None:
        return None
    table = read_csv(path)
    missing = [c for c in PRETRAIN_REQUIRED if c not in table]
    if len(table) and missing:
        raise TableError(
            f"{path}: column {missing[0]!r} is missing (a pretraining table needs {', '.join(PRETRAIN_REQUIRED)})"
        )
    return table


def fit_files(runs_path, pretrain_path, options: dict | None, out_dir: Path) -> AnalysisResults:
    """The fit rule: the runs (and pretraining) tables read and checked, every fit and table
    written into out_dir (ftscale.analysis.tables.run_analysis)."""
    return run_analysis(read_runs(runs_path), read_pretrain(pretrain_path), options, Path(out_dir))
