"""Fitting: recovery of known parameters, the joint procedure, critical sizes, bad input."""
import numpy as np
import pandas as pd
import pytest

from ftscale import analysis, fitting
from ftscale.fitting import Group

MODEL_SIZES = np.array([1e5, 2e5, 4e5, 8e5, 1.6e6])
DF_SIZES = np.array([64, 128, 256, 512, 1024, 2048])
X, DF = (a.ravel() for a in np.meshgrid(MODEL_SIZES, DF_SIZES, indexing="ij"))


def noisy(values, scale=2e-4, seed=0):
    return values + np.random.default_rng(seed).normal(0, scale, len(values))


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
@pytest.mark.parametrize("truth", [
    {"A": 50.0, "alpha": 0.2, "beta": 0.3, "E": 0.5},
    {"A": 3.0, "alpha": 0.002, "beta": 0.25, "E": 0.6},       # nearly flat factor (PET-size scaling)
    {"A": 40.0, "alpha": 0.15, "beta": 0.4, "E": 5e-4},       # irreducible term near zero
])
def test_multiplicative_recovery(truth, objective):
    loss = noisy(fitting.predict("multiplicative", truth, DF, X))
    fitted = fitting.fit("multiplicative", [Group(DF, loss, X)], objective=objective).params[0]
    assert fitted["alpha"] == pytest.approx(truth["alpha"], abs=0.01)
    assert fitted["beta"] == pytest.approx(truth["beta"], abs=0.01)
    assert fitted["E"] == pytest.approx(truth["E"], abs=0.01)
    assert np.max(np.abs(fitting.predict("multiplicative", fitted, DF, X) - loss)) < 2e-3


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
def test_additive_and_power_recovery(objective):
    truth = {"A": 20.0, "alpha": 0.3, "B": 10.0, "beta": 0.4, "E": 0.6}
    loss = noisy(fitting.predict("additive", truth, DF, X), 1e-4)
    fitted = fitting.fit("additive", [Group(DF, loss, X)], objective=objective).params[0]
    for key in ("alpha", "beta", "E"):
        assert fitted[key] == pytest.approx(truth[key], abs=0.02)
    power = {"A": 8.0, "beta": 0.35, "E": 0.7}
    loss = noisy(fitting.predict("power", power, DF_SIZES), 1e-4)
    fitted = fitting.fit("power", [Group(DF_SIZES, loss)], objective=objective).params[0]
    assert fitted["beta"] == pytest.approx(0.35, abs=0.02) and fitted["E"] == pytest.approx(0.7, abs=0.02)


def test_fit_is_deterministic():
    loss = noisy(fitting.predict("multiplicative", {"A": 50.0, "alpha": 0.2, "beta": 0.3, "E": 0.5}, DF, X))
    first = fitting.fit("multiplicative", [Group(DF, loss, X)])
    second = fitting.fit("multiplicative", [Group(DF, loss, X)])
    assert first.params == second.params


def test_joint_procedure_returns_shared_beta_and_e():
    """Model and pretraining axes built from one beta and E: step one recovers them, step two keeps them."""
    tokens = np.array([2.5e5, 5e5, 1e6, 2e6])
    shared = {"beta": 0.3, "E": 0.5}
    rows = []
    for axis, sizes, params in (("model", MODEL_SIZES, {"A": 50.0, "alpha": 0.25}),
                                ("pretrain", tokens, {"A": 20.0, "alpha": 0.1})):
        for x in sizes:
            for df in DF_SIZES:
                loss = fitting.predict("multiplicative", params | shared, df, x)
                rows.append({"task": "t", "method": "fmt", "model": f"m{x:g}", "params": x if axis == "model" else 1e5,
                             "pretrain_tokens": x if axis == "pretrain" else 2e6, "pet_size": None,
                             "finetune_examples": df, "test_loss": float(loss), "axis": axis})
    table = pd.DataFrame(rows)
    points = {axis: analysis.axis_points(table.assign(**{f"axis_{a}": table.axis == a for a in analysis.AXIS_X}),
                                         axis, {}) for axis in ("model", "pretrain")}
    result = analysis.joint_fits(points, "multiplicative", analysis.DEFAULT_OPTIONS)
    for axis, alpha in (("model", 0.25), ("pretrain", 0.1)):
        params = result[axis]["params"]
        assert params["beta"] == pytest.approx(0.3, abs=1e-3) and params["E"] == pytest.approx(0.5, abs=1e-3)
        assert params["alpha"] == pytest.approx(alpha, abs=1e-3)
        assert result[axis]["delta_e"] < 1e-3


def test_critical_size_numerical_matches_closed_form():
    p1 = {"A": 1e4, "a": np.log(1e4), "alpha": 0.3, "beta": 0.5, "E": 0.5}
    p2 = {"A": 10.0, "a": np.log(10.0), "alpha": 0.1, "beta": 0.2, "E": 0.5}
    h, gamma = fitting.critical_closed_form(p1, p2)
    for x in (1e5, 1e6, 1e7):
        numerical = fitting.critical_size("multiplicative", p1, p2, x)
        assert numerical == pytest.approx(h * x ** gamma, rel=1e-6)
        assert fitting.predict("multiplicative", p1, numerical, x) == pytest.approx(
            fitting.predict("multiplicative", p2, numerical, x), rel=1e-9)
    never = dict(p2, E=0.1)   # method 2 lower everywhere in range: no crossing is a result
    assert np.isnan(fitting.critical_size("multiplicative", dict(p1, beta=0.2, alpha=0.1, A=10.0), never, 1e6))


@pytest.mark.parametrize("groups, message", [
    ([Group([], [], [])], "no points"),
    ([Group([64, 128, 256, 512], [1.0, np.nan, 0.8, 0.7], [1, 1, 2, 2])], "finite"),
    ([Group([64, -1, 256, 512], [1.0, 0.9, 0.8, 0.7], [1, 1, 2, 2])], "positive"),
    ([Group([64, 128, 256, 512], [1.0, 0.9, 0.8, 0.7], [0, 1, 2, 2])], "X"),
    ([Group([64, 128], [1.0, 0.9], [1, 2])], "cannot determine"),
])
def test_bad_input_is_one_line(groups, message):
    with pytest.raises(fitting.FitError, match=message) as error:
        fitting.fit("multiplicative", groups)
    assert "\n" not in str(error.value)


def test_pearson():
    r, p = fitting.pearson([1.0, 0.9, 0.8, 0.7], [10, 20, 30, 41])
    assert r < -0.99 and p < 0.01
    assert all(np.isnan(fitting.pearson([1, 1, 1], [1, 2, 3])))
