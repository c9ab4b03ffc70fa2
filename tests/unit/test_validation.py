"""Leave-one-X-out / leave-one-Df-out errors of both joint laws, and the paired bootstrap of their
Delta_h per task (ftscale.analysis.validation), on runs drawn from a known multiplicative or additive law."""

import numpy as np
import pandas as pd
import pytest

from ftscale.analysis import procedure, tables
from ftscale.plan.grid import AXES
from tests.synthetic_study import synthetic_metrics

SMALL_GRID = {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]}


def errors(fits, law, axis, kind, method="fmt"):
    (row,) = [
        r
        for r in fits["leave_one_out"]
        if (r["law"], r["axis"], r["leave_out"], r["method"]) == (law, axis, kind, method)
    ]
    return row


@pytest.fixture(scope="module")
def exact():
    """Noise-free runs of the multiplicative law (one seed), FMT only: model and pretraining axes."""
    return synthetic_metrics(tasks=("translation_ende",), methods=("fmt",), seeds=1, noise=0.0)


def test_leave_one_out_predicts_an_exact_law_and_counts_values(exact):
    fits = procedure.analyze(exact, {"bootstrap": 0, "init_grid": SMALL_GRID})
    for axis, n_x in (("model", 4), ("pretrain", 3)):
        x_out, df_out = errors(fits, "multiplicative", axis, "x"), errors(fits, "multiplicative", axis, "df")
        assert x_out["n_values"] == n_x and df_out["n_values"] == 5
        assert x_out["error"] < 1e-4 and df_out["error"] < 1e-4  # the law it was drawn from
        assert errors(fits, "additive", axis, "x")["error"] > 10 * x_out["error"]
    table = tables.tables(fits)["leave_one_out"]
    assert list(table.columns[:7]) == [
        "task",
        "axis",
        "method",
        "leave_out",
        "error_multiplicative",
        "error_additive",
        "n_values",
    ]
    assert len(table) == 4  # 2 axes x (x, df)


def test_a_left_out_condition_is_out_of_every_axis(exact):
    """The smallest model on the full corpus is one condition on the model and the pretraining axis.
    Shifting its loss by 0.05 must move the leave-one-X-out error at that X by exactly 0.05, on
    either axis: it is out of the refit on both. Were it kept on the pretraining axis, the refit would bend
    towards it and the error would be smaller."""
    shifted = exact.copy()
    shared = (shifted.model == "m1") & shifted.axis_model & shifted.axis_pretrain
    shifted.loc[shared, "test_loss"] += 0.05
    fits = procedure.analyze(shifted, {"bootstrap": 0, "init_grid": SMALL_GRID})
    # left out as the smallest model, and as the full corpus (the largest pretraining X)
    assert errors(fits, "multiplicative", "model", "x")["errors"][1e5] == pytest.approx(0.05, abs=1e-6)
    assert errors(fits, "multiplicative", "pretrain", "x")["errors"][1e6] == pytest.approx(0.05, abs=1e-6)


def additive_metrics() -> pd.DataFrame:
    """Runs of the additive law L = 8 N^-0.25 + 30 Df^-0.5 + 0.5 on the model axis only."""
    table = synthetic_metrics(tasks=("translation_ende",), methods=("fmt", "lora"), noise=0.0)
    table = table[table.axis_model].assign(**{f"axis_{a}": a == "model" for a in AXES})
    rng = np.random.default_rng(0)
    loss = 8 * (table["params"] / 1e5) ** -0.25 + 30 * table["finetune_examples"] ** -0.5 + 0.5
    return table.assign(test_loss=loss + rng.normal(0, 1e-3, len(table)))


@pytest.mark.parametrize("law", ["multiplicative", "additive"])
def test_the_paired_bootstrap_prefers_the_generating_law(law):
    if law == "multiplicative":
        metrics = synthetic_metrics(tasks=("translation_ende",), methods=("fmt", "lora"), noise=1e-3)
    else:
        metrics = additive_metrics()
    options = {"heldout": {"model": ["m4"]}, "bootstrap": 20, "init_grid": SMALL_GRID}
    fits = procedure.analyze(metrics, options)
    (row,) = fits["law_comparison"]
    assert row["n_bootstrap"] == 20 and row["n_fits"] == 2  # the model axis of 2 methods
    assert row["difference"] == pytest.approx(row["delta_h_multiplicative"] - row["delta_h_additive"])
    assert row["difference_low"] <= row["difference"] <= row["difference_high"]
    if law == "multiplicative":
        assert row["difference_high"] < 0 and row["p_multiplicative_lower"] == 1.0
    else:
        assert row["difference_low"] > 0 and row["p_multiplicative_lower"] == 0.0


def test_no_bootstrap_no_comparison(exact, tmp_path):
    results = tables.run_analysis(
        exact, None, {"heldout": {"model": ["m4"]}, "bootstrap": 0, "init_grid": SMALL_GRID}, tmp_path
    )
    assert results["law_comparison"].empty and "No results" in (tmp_path / "law_comparison.md").read_text()
