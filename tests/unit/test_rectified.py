"""The rectified law L(D) = B / (D_l + D^beta) + E: formula, recovery of known parameters from noisy
curves with a visible pre-power phase, the bootstrap, one-line errors, and `ftscale fit --law rectified`."""

import json

import numpy as np
import pandas as pd
import pytest

from ftscale import cli
from ftscale.fitting import laws, rectified, solver, statistics

TRUTH = {"B": 900.0, "D_l": 400.0, "beta": 0.7, "E": 0.8}  # knee at D_l^(1/beta) ~ 5,100 examples
SIZES = np.array([0.0] + [100.0 * 2**k for k in range(13)])  # 0 (zero-shot), 100 ... 409,600


def noisy_curve(seed: int, noise: float = 2e-3) -> np.ndarray:
    return rectified.predict(TRUTH, SIZES) + np.random.default_rng(seed).normal(0, noise, len(SIZES))


def test_formula_at_zero_and_far_out():
    assert rectified.predict(TRUTH, 0.0) == pytest.approx(TRUTH["B"] / TRUTH["D_l"] + TRUTH["E"])
    far = 1e12
    power = TRUTH["B"] / far ** TRUTH["beta"] + TRUTH["E"]  # D^beta >> D_l: the power law
    assert rectified.predict(TRUTH, far) == pytest.approx(power, rel=1e-9)
    # bootstrap-shaped parameters broadcast to one row per parameter set
    assert rectified.predict({k: np.full(3, v) for k, v in TRUTH.items()}, SIZES).shape == (3, len(SIZES))


def test_pre_power_phase_is_visible_in_the_synthetic_curve():
    log_loss, log_size = np.log(rectified.predict(TRUTH, SIZES)), np.log(SIZES[1:])
    slope = np.diff(log_loss[1:]) / np.diff(log_size)
    assert -slope[0] < 0.3 * -slope[7]  # the log-log slope at 100-200 is a fraction of that at 12,800-25,600


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_known_parameters_from_noisy_curves(objective, seed):
    result = rectified.fit(SIZES, noisy_curve(seed), objective=objective)
    params = result.params
    assert params["beta"] == pytest.approx(TRUTH["beta"], rel=0.1)
    assert params["E"] == pytest.approx(TRUTH["E"], rel=0.05)
    assert params["D_l"] == pytest.approx(TRUTH["D_l"], rel=0.5)
    assert rectified.predict(params, 0.0) == pytest.approx(rectified.predict(TRUTH, 0.0), abs=0.01)


def test_beats_the_power_law_where_the_curve_bends():
    loss, positive = noisy_curve(3), SIZES > 0
    ours = rectified.fit(SIZES[positive], loss[positive])
    power = solver.fit("power", [laws.Group(SIZES[positive], loss[positive])])
    error_ours = statistics.mean_absolute_deviation(rectified.predict(ours.params, SIZES[positive]), loss[positive])
    error_power = statistics.mean_absolute_deviation(
        laws.predict("power", power.params[0], SIZES[positive]), loss[positive]
    )
    assert error_ours < 0.25 * error_power


def test_bootstrap_intervals_cover_the_fit():
    loss = noisy_curve(4)
    result = rectified.fit(SIZES, loss)
    thetas = rectified.bootstrap(result, SIZES, loss, 12, np.random.default_rng(0))
    assert thetas.shape == (12, rectified.N_PARAMS) and np.isfinite(thetas).all(axis=1).sum() >= 10
    low, high = statistics.percentile_interval(rectified.params_of(thetas)["beta"])
    assert low <= result.params["beta"] <= high


@pytest.mark.parametrize(
    "df, loss, message",
    [
        ([100, 200, 400], [2.0, 1.9, 1.8], "3 distinct finetuning-data sizes"),
        ([-1, 100, 200, 400, 800], [2.0, 1.9, 1.8, 1.7, 1.6], ">= 0"),
        ([100, 200, 400, 800, 1600], [2.0, 1.9, np.nan, 1.7, 1.6], "positive and finite"),
    ],
)
def test_bad_points_raise_one_line(df, loss, message):
    with pytest.raises(laws.FitError, match=message) as error:
        rectified.fit(np.array(df, float), np.array(loss, float))
    assert "\n" not in str(error.value)


def test_cli_fit_rectified(tmp_path, capsys):
    table = tmp_path / "curve.csv"
    pd.DataFrame({"examples": SIZES, "loss": noisy_curve(5)}).to_csv(table, index=False)
    out = tmp_path / "fit.json"
    assert (
        cli.main(
            [
                "fit",
                str(table),
                "--law",
                "rectified",
                "--x",
                "examples",
                "--loss",
                "loss",
                "--heldout",
                "examples > 100000",
                "--bootstrap",
                "8",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result["params"]) == {"B", "D_l", "beta", "E"} and result["n_heldout"] == 3
    assert result["params"]["beta"] == pytest.approx(TRUTH["beta"], rel=0.2)
    assert result["delta_h"] < 0.02 and set(result["intervals"]) == set(result["params"])
    assert "rectified law" in capsys.readouterr().out
