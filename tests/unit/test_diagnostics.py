"""Fit diagnostics (ftscale.fitting.diagnostics): a fit of a known law is clean; a degenerate one (the
toy's summarization prompt-tuning model-axis fit, and one built here the same way), one stopped off
its optimum, one with E at zero and one with zero-width intervals are flagged, in fits.json, the
tables and the figure panels."""

import json

import numpy as np
import pandas as pd
import pytest

from ftscale.analysis import procedure, tables
from ftscale.figures import paper
from ftscale.figures.panels import plt
from ftscale.fitting import diagnostics, solver
from ftscale.fitting.laws import Group
from tests.synthetic_study import synthetic_metrics

LIMITS = procedure.resolve_options({})["diagnostics"]  # the schema's defaults
SMALL_GRID = {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]}
X = np.repeat([1e5, 2e5, 4e5, 8e5], 5)
DF = np.tile([64.0, 128, 256, 512, 1024], 4)


def known_law(irreducible=0.6, noise=2e-3, seed=0):
    rng = np.random.default_rng(seed)
    return 20.0 * X**-0.2 * DF**-0.3 + irreducible + rng.normal(0, noise, X.size)


def diagnose_fit(result, **kw):
    return diagnostics.diagnose(result.params[0], LIMITS, gradient=result.gradient, n_points=result.n_points, **kw)


def test_limits_are_the_schemas_config_keys():
    assert set(LIMITS) == set(diagnostics.LIMIT_KEYS)
    assert procedure.resolve_options({"diagnostics": {"exponent_limit": 50}})["diagnostics"]["exponent_limit"] == 50
    with pytest.raises(ValueError, match="alpha_limit"):
        procedure.resolve_options({"diagnostics": {"alpha_limit": 50}})


def test_a_fit_of_a_known_law_is_clean():
    result = solver.fit("multiplicative", [Group(DF, known_law(), X)])
    p = result.params[0]
    assert p["alpha"] == pytest.approx(0.2, rel=0.05) and p["beta"] == pytest.approx(0.3, rel=0.05)
    assert diagnose_fit(result) == {"converged": True, "at_bound": [], "degenerate": [], "flagged": False}
    assert diagnostics.describe(diagnose_fit(result)) == ""


def test_a_point_off_the_optimum_has_not_converged():
    group = Group(DF, known_law(), X)
    result = solver.fit("multiplicative", [group])
    assert np.allclose(solver.gradient_at("multiplicative", [group], result.theta), result.gradient)
    moved = result.theta + np.where(np.array(result.names) == "alpha0", 0.01, 0.0)
    gradient = solver.gradient_at("multiplicative", [group], moved)
    assert diagnostics.converged(gradient, result.n_points, 1e-3, LIMITS["gradient_tolerance"]) is False
    found = diagnostics.diagnose(result.params[0], LIMITS, gradient=gradient, n_points=result.n_points)
    assert found["flagged"] and diagnostics.describe(found) == "not converged"


def test_a_step_in_x_is_flagged_degenerate():
    """The toy's failure, rebuilt: beta and E fixed by the shared step one, the smallest model above a
    plateau at E, so only a term that vanishes between the two smallest sizes fits (alpha runs off)."""
    x, df = np.repeat([1e5, 2e5, 4e5], 5), np.tile([64.0, 128, 256, 512, 1024], 3)
    loss = np.where(x == 1e5, 3.0, 2.6) + np.random.default_rng(0).normal(0, 1e-3, x.size)
    result = solver.fit("multiplicative", [Group(df, loss, x)], fixed={"beta": 0.01, "e": np.log(2.6)})
    assert result.params[0]["alpha"] > LIMITS["exponent_limit"]
    found = diagnose_fit(result)
    assert found["flagged"] and found["converged"] and found["at_bound"] == ["A"]
    assert found["degenerate"][0].startswith("|alpha|")


def test_the_toys_summarization_prompt_fit_is_flagged():
    """Issue 23's numbers: alpha 43.85, A 8e205, bootstrap interval 43.848-43.855."""
    params = {"a": np.log(8e205), "A": 8e205, "alpha": 43.85, "beta": 0.055, "E": 2.4}
    found = diagnostics.diagnose(params, LIMITS, intervals={"alpha": (43.848, 43.855), "beta": (0.04, 0.07)})
    assert found["flagged"] and found["converged"] is None and found["at_bound"] == ["A"]
    assert found["degenerate"] == ["|alpha| 43.85 > 5", "alpha interval [43.848, 43.855] of zero width"]
    # the limits are config keys: a looser one lets alpha pass, the zero-width interval still flags it
    loose = dict(LIMITS, exponent_limit=50.0, log_scale_limit=1000.0)
    assert diagnostics.diagnose(params, loose, intervals={"alpha": (43.848, 43.855)})["degenerate"] == [
        "alpha interval [43.848, 43.855] of zero width"
    ]


def test_no_irreducible_loss_is_e_at_its_bound():
    result = solver.fit("multiplicative", [Group(DF, known_law(irreducible=0.0, noise=1e-4), X)])
    assert result.params[0]["E"] < LIMITS["irreducible_floor"]
    assert diagnose_fit(result)["at_bound"] == ["E"]


def plateau_metrics() -> pd.DataFrame:
    """Synthetic runs whose prompt-tuning model axis is the step above: m2 and m3 on a plateau at E."""
    metrics = synthetic_metrics(tasks=("translation_ende",), methods=("fmt", "prompt"), noise=1e-3)
    plateau = (metrics.method == "prompt") & metrics.axis_model & metrics.model.isin(["m2", "m3"])
    metrics.loc[plateau, "test_loss"] = 0.62 + np.random.default_rng(1).normal(0, 1e-3, plateau.sum())
    return metrics


def test_tables_and_fits_json_mark_the_flagged_fits(tmp_path):
    options = {"heldout": {"model": ["m4"]}, "bootstrap": 0, "init_grid": SMALL_GRID}
    results = tables.run_analysis(plateau_metrics(), None, options, tmp_path)
    params = results["params"].set_index(["method", "axis"])
    assert params.loc[("prompt", "model"), "flagged"]
    assert "|alpha|" in params.loc[("prompt", "model"), "diagnostics"]
    assert not params.loc[("fmt", "model"), "flagged"] and params.loc[("fmt", "model"), "diagnostics"] == ""
    assert not params.loc[("prompt", "pretrain"), "flagged"]
    assert "|alpha|" in (tmp_path / "params.md").read_text()
    held = results["heldout_error"]
    assert "multiplicative" in held.loc[(held.method == "prompt") & (held.axis == "model"), "flagged"].iloc[0]
    fits = json.loads((tmp_path / "fits.json").read_text())
    flagged = {(f["method"], f["axis"], f["law"]) for f in fits["joint"] if f["diagnostics"]["flagged"]}
    assert ("prompt", "model", "multiplicative") in flagged and ("fmt", "model", "multiplicative") not in flagged
    assert all(f["diagnostics"]["converged"] for f in fits["joint"] + fits["single_variable"])


def test_one_run_per_condition_gives_zero_width_intervals_that_are_flagged(tmp_path):
    metrics = synthetic_metrics(tasks=("translation_ende",), methods=("fmt",), seeds=1)
    results = tables.run_analysis(metrics, None, {"bootstrap": 5, "init_grid": SMALL_GRID}, tmp_path)
    assert results["params"]["flagged"].all()
    assert results["params"]["diagnostics"].str.contains("alpha interval .* of zero width").all()


def test_a_flagged_panel_says_why_in_red():
    fig, (clean, flagged) = plt.subplots(1, 2)
    row = {"diagnostics": {"converged": True, "at_bound": ["A"], "degenerate": ["|alpha| 43.85 > 5"], "flagged": True}}
    paper._flag_text(flagged, [row])
    paper._flag_text(clean, [{"diagnostics": {"converged": True, "at_bound": [], "degenerate": [], "flagged": False}}])
    assert [t.get_text() for t in clean.texts] == []
    (text,) = flagged.texts
    assert "FLAGGED" in text.get_text() and "43.85" in text.get_text() and text.get_color() == "red"
    plt.close(fig)


def test_the_pretraining_law_has_diagnostics_too():
    """Fig 10's L(N) = A / N^alpha + E per family: three sizes on an exact law are clean; a step
    (the two larger sizes level) drives alpha past the limit and is flagged."""
    sizes = np.array([1e5, 2e5, 4e5, 8e5])
    exact = pd.DataFrame(
        {
            "family": "ende",
            "model": ["m1", "m2", "m3", "m4"],
            "params": sizes,
            "pretrain_tokens": 1e6,
            "val_loss": 30 * sizes**-0.3 + 1.5,
        }
    )
    step = exact.assign(val_loss=[3.0, 2.0, 2.0, 2.0], family="enzh")
    fits = procedure.analyze(
        synthetic_metrics(tasks=("translation_ende",), methods=("fmt",)),
        {"bootstrap": 0, "init_grid": SMALL_GRID},
        pd.concat([exact, step]),
    )
    diagnosed = {row["family"]: row["fit"]["diagnostics"] for row in fits["pretraining"]}
    assert not diagnosed["ende"]["flagged"]
    assert diagnosed["enzh"]["flagged"] and diagnosed["enzh"]["degenerate"][0].startswith("|alpha|")
