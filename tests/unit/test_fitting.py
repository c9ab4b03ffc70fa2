"""Fitting: recovery of known parameters (both objectives, hard cases), the batched multi-start
against a plain per-start loop, fixed parameters, batches, the joint procedure, critical sizes,
bootstrap helpers, bad input.

Recovery tolerances (noise sd 2e-4 on losses of 0.5-1.5; about 3x the largest error measured over
eight noise seeds): alpha +-1e-3 (flat factor alpha=0.002: +-5e-4), beta +-2e-3, E +-4e-3
(E=5e-4: +-2e-3), A within 3%; additive B within 3%; power law beta +-2e-3, E +-5e-3, A within 5%.
"""

import numpy as np
import pytest

from ftscale.fitting import laws, solver, statistics
from ftscale.fitting.laws import Group
from tests.synthetic_study import every_root

MODEL_SIZES = np.array([1e5, 2e5, 4e5, 8e5, 1.6e6])
DF_SIZES = np.array([64, 128, 256, 512, 1024, 2048])
X, DF = (a.ravel() for a in np.meshgrid(MODEL_SIZES, DF_SIZES, indexing="ij"))
ORDINARY = {"A": 50.0, "alpha": 0.2, "beta": 0.3, "E": 0.5}


def noisy(values, scale=2e-4, seed=0):
    return values + np.random.default_rng(seed).normal(0, scale, np.shape(values))


def multiplicative_loss(truth, seed=0):
    return noisy(laws.predict("multiplicative", truth, DF, X), seed=seed)


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
@pytest.mark.parametrize(
    "truth, alpha_tol, e_tol",
    [
        (ORDINARY, 1e-3, 4e-3),
        ({"A": 3.0, "alpha": 0.002, "beta": 0.25, "E": 0.6}, 5e-4, 4e-3),  # nearly flat factor (PET size)
        ({"A": 40.0, "alpha": 0.15, "beta": 0.4, "E": 5e-4}, 1e-3, 2e-3),  # irreducible term near zero
    ],
    ids=["ordinary", "flat-factor", "E-near-zero"],
)
def test_multiplicative_recovery(truth, alpha_tol, e_tol, objective):
    loss = multiplicative_loss(truth)
    fitted = solver.fit("multiplicative", [Group(DF, loss, X)], objective=objective).params[0]
    assert fitted["alpha"] == pytest.approx(truth["alpha"], abs=alpha_tol)
    assert fitted["beta"] == pytest.approx(truth["beta"], abs=2e-3)
    assert fitted["E"] == pytest.approx(truth["E"], abs=e_tol)
    assert fitted["A"] == pytest.approx(truth["A"], rel=0.03)
    assert np.max(np.abs(laws.predict("multiplicative", fitted, DF, X) - loss)) < 1e-3


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
def test_additive_recovery(objective):
    truth = {"A": 20.0, "alpha": 0.3, "B": 10.0, "beta": 0.4, "E": 0.6}
    loss = noisy(laws.predict("additive", truth, DF, X))
    fitted = solver.fit("additive", [Group(DF, loss, X)], objective=objective).params[0]
    assert fitted["alpha"] == pytest.approx(0.3, abs=3e-3) and fitted["beta"] == pytest.approx(0.4, abs=2e-3)
    assert fitted["E"] == pytest.approx(0.6, abs=5e-3)
    assert fitted["A"] == pytest.approx(20.0, rel=0.03) and fitted["B"] == pytest.approx(10.0, rel=0.03)


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
def test_power_recovery(objective):
    sizes = np.array([64, 128, 256, 512, 1024, 2048, 4096])
    loss = noisy(laws.predict("power", {"A": 8.0, "beta": 0.35, "E": 0.7}, sizes))
    fitted = solver.fit("power", [Group(sizes, loss)], objective=objective).params[0]
    assert fitted["beta"] == pytest.approx(0.35, abs=2e-3) and fitted["E"] == pytest.approx(0.7, abs=5e-3)
    assert fitted["A"] == pytest.approx(8.0, rel=0.05)


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
def test_batched_multistart_matches_a_plain_per_start_loop(objective):
    """Same grid, same data: the vectorised screen + L-BFGS-B refine reaches the loop's best optimum."""
    loss = noisy(laws.predict("multiplicative", ORDINARY, DF, X), scale=5e-3)  # beyond delta: L1-like
    grid = {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]}
    batched = solver.fit("multiplicative", [Group(DF, loss, X)], objective=objective, init_grid=grid)
    loop = solver.fit("multiplicative", [Group(DF, loss, X)], objective=objective, init_grid=grid, strategy="loop")
    assert batched.n_starts == loop.n_starts == 16
    assert batched.objective_value <= loop.objective_value * (1 + 1e-9)
    np.testing.assert_allclose(batched.theta, loop.theta, atol=1e-5)


def test_grid_has_every_combination_of_per_parameter_values():
    starts = solver.grid_starts(["a0", "alpha0", "a1", "alpha1", "beta", "e"])
    assert starts.shape == (3**4, 6)  # roles a, alpha, beta, e; groups start alike
    assert len({tuple(s) for s in starts}) == 81
    np.testing.assert_array_equal(starts[:, 0], starts[:, 2])
    assert solver.grid_starts(["a0", "b0"], {"log_scale": [1.0, 2.0]}).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]


def test_fit_is_deterministic():
    loss = multiplicative_loss(ORDINARY)
    first = solver.fit("multiplicative", [Group(DF, loss, X)])
    second = solver.fit("multiplicative", [Group(DF, loss, X)])
    np.testing.assert_array_equal(first.theta, second.theta)
    assert first.params == second.params
    replicates = np.stack([multiplicative_loss(ORDINARY, seed) for seed in range(5)])
    batch_1 = solver.fit("multiplicative", [Group(DF, replicates, X)], starts=first.start)
    batch_2 = solver.fit("multiplicative", [Group(DF, replicates, X)], starts=first.start)
    np.testing.assert_array_equal(batch_1.theta, batch_2.theta)


def test_fixed_parameters_stay_fixed_and_the_rest_is_fitted():
    loss = multiplicative_loss(ORDINARY)
    result = solver.fit("multiplicative", [Group(DF, loss, X)], fixed={"beta": 0.3, "e": np.log(0.5)})
    params = result.params[0]
    assert params["beta"] == 0.3 and params["E"] == pytest.approx(0.5, rel=1e-12)
    assert params["alpha"] == pytest.approx(0.2, abs=1e-3) and params["A"] == pytest.approx(50.0, rel=0.01)
    assert result.start.shape == (2,)  # only a0 and alpha0 were free
    with pytest.raises(laws.FitError, match="cannot fix"):
        solver.fit("multiplicative", [Group(DF, loss, X)], fixed={"gamma": 1.0})


def test_batch_of_data_sets_equals_separate_fits():
    replicates = np.stack([multiplicative_loss(ORDINARY, seed) for seed in range(4)])
    batch = solver.fit("multiplicative", [Group(DF, replicates, X)])
    assert batch.theta.shape == (4, 4)
    for i in range(4):
        alone = solver.fit("multiplicative", [Group(DF, replicates[i], X)])
        np.testing.assert_allclose(batch.theta[i], alone.theta, atol=1e-6)
    # per-replicate fixed values (the bootstrap's step two)
    fixed = solver.fit(
        "multiplicative", [Group(DF, replicates, X)], fixed={"beta": batch.params[0]["beta"], "e": batch.params[0]["e"]}
    )
    np.testing.assert_allclose(fixed.theta, batch.theta, atol=1e-6)


def test_weights_are_multiplicities():
    loss = multiplicative_loss(ORDINARY)
    weights = statistics.case_resample_weights(len(loss), 1, np.random.default_rng(3))[0]
    weighted = solver.fit("multiplicative", [Group(DF, loss, X, weights)])
    rows = np.repeat(np.arange(len(loss)), weights.astype(int))
    repeated = solver.fit("multiplicative", [Group(DF[rows], loss[rows], X[rows])])
    np.testing.assert_allclose(weighted.theta, repeated.theta, atol=1e-6)


def test_joint_procedure_returns_shared_beta_and_e():
    """Model and pretraining axes built from one beta and E: step one recovers them, step two keeps them
    fixed and recovers each axis' own A and alpha; the PET axis is refit with the same beta and E."""
    shared = {"beta": 0.3, "E": 0.5}
    truths = {
        "model": (MODEL_SIZES, {"A": 50.0, "alpha": 0.25}),
        "pretrain": (np.array([2.5e5, 5e5, 1e6, 2e6]), {"A": 20.0, "alpha": 0.1}),
        "pet": (np.array([2, 4, 8, 16]), {"A": 2.0, "alpha": 0.002}),
    }
    axes = {}
    for axis, (sizes, params) in truths.items():
        x, df = (a.ravel() for a in np.meshgrid(sizes, DF_SIZES, indexing="ij"))
        axes[axis] = Group(df, noisy(laws.predict("multiplicative", params | shared, df, x), 1e-4), x)
    result = solver.fit_joint("multiplicative", axes)
    assert len(result["step_one"].params) == 2  # model and pretrain only: PET excluded
    for axis, (_, params) in truths.items():
        fitted = result[axis].params[0]
        assert fitted["beta"] == result["step_one"].params[0]["beta"] == pytest.approx(0.3, abs=1e-3)
        assert fitted["E"] == pytest.approx(0.5, abs=2e-3)
        assert fitted["alpha"] == pytest.approx(params["alpha"], abs=1e-3)
        assert result[axis].start.shape == (2,)  # beta and e were held fixed
    # a batch of replicates: each one's step two uses its own step-one beta and e
    replicated = {a: Group(g.finetune_examples, np.stack([g.loss, g.loss + 0.01]), g.x) for a, g in axes.items()}
    batch = solver.fit_joint("multiplicative", replicated, warm=solver.warm_starts(result))
    assert batch["pet"].params[0]["E"][1] == pytest.approx(batch["step_one"].params[0]["E"][1])
    assert batch["pet"].params[0]["E"][1] - batch["pet"].params[0]["E"][0] == pytest.approx(0.01, abs=1e-4)


P1 = {"A": 1e4, "a": np.log(1e4), "alpha": 0.3, "beta": 0.5, "E": 0.5}
P2 = {"A": 10.0, "a": np.log(10.0), "alpha": 0.1, "beta": 0.2, "E": 0.5}


def test_critical_size_numerical_matches_closed_form_when_e_equal():
    h, gamma = laws.critical_closed_form(P1, P2)
    assert h == pytest.approx((1e4 / 10.0) ** (1 / 0.3)) and gamma == pytest.approx((0.1 - 0.3) / 0.3)
    for x in (1e5, 1e6, 1e7):
        first, second = laws.crossings("multiplicative", P1, P2, x)
        assert first == pytest.approx(h * x**gamma, rel=1e-9) and np.isnan(second)  # equal E: one crossing
        assert laws.predict("multiplicative", P1, first, x) == pytest.approx(
            laws.predict("multiplicative", P2, first, x), rel=1e-12
        )


@pytest.mark.parametrize("e_2, expected", [(0.45, 2), (0.55, 1), (0.9, 1), (0.5, 1)])
def test_every_crossing_over_the_whole_df_range(e_2, expected):
    """With E1 != E2 the gap can cross zero twice (below and above its turning point): both are
    reported, each the root an independent solver finds, however far from any data."""
    p2 = dict(P2, E=e_2)
    x = 1e6
    found = laws.crossings("multiplicative", P1, p2, x)
    roots = every_root("multiplicative", P1, p2, x)
    assert len(roots) == expected == np.isfinite(found).sum()
    np.testing.assert_allclose(found[np.isfinite(found)], roots, rtol=1e-9)
    for df in roots:
        assert laws.predict("multiplicative", P1, df, x) == pytest.approx(
            laws.predict("multiplicative", p2, df, x), rel=1e-12
        )


def test_crossings_far_outside_any_data_are_found():
    """A crossing below one example or above 1e12 examples is still a crossing (the old scan of
    [1, 1e12] returned NaN for both)."""
    for target in (1e-6, 1e15):  # equal E at X = 1: Df = (A1 / A2)^(1 / (beta1 - beta2)), here = target
        scale = 1e4 / target**0.3
        p2 = dict(P2, A=scale, a=np.log(scale))
        first, second = laws.crossings("multiplicative", P1, p2, 1.0)
        assert first == pytest.approx(target, rel=1e-9) and np.isnan(second)


def test_no_crossing_is_nan():
    never = dict(P1, E=0.1)  # method 1 below method 2 at every Df
    assert np.isnan(laws.crossings("multiplicative", never, dict(P1, E=0.2), 1e6)).all()
    assert np.isnan(laws.crossings("multiplicative", P1, dict(P1, E=0.6), 1e6)).all()  # same curve, lifted
    assert np.isnan(laws.critical_closed_form(P1, dict(P2, beta=0.5))[0])  # parallel: no H


def test_crossings_vectorised_over_replicates_and_x():
    batch_1 = {k: np.array([v, v, v]) for k, v in P1.items()}
    batch_2 = {k: np.array([v, v, v]) for k, v in P2.items()}
    batch_2["E"] = np.array([0.5, 0.45, 0.9])
    values = laws.crossings("multiplicative", batch_1, batch_2, 1e6)
    assert values.shape == (3, 2)
    for i, e in enumerate([0.5, 0.45, 0.9]):
        np.testing.assert_allclose(values[i], laws.crossings("multiplicative", P1, dict(P2, E=e), 1e6), rtol=1e-12)
    xs = np.array([1e5, 1e6, 1e7])
    on_grid = laws.crossings("multiplicative", P1, dict(P2, E=0.45), xs)
    assert on_grid.shape == (3, 2)
    for i, x in enumerate(xs):
        np.testing.assert_allclose(on_grid[i], laws.crossings("multiplicative", P1, dict(P2, E=0.45), x), rtol=1e-12)


def test_crossings_of_the_additive_and_power_laws():
    additive_1 = {"A": 5.0, "alpha": 0.2, "B": 40.0, "beta": 0.5, "E": 0.5}
    additive_2 = {"A": 3.0, "alpha": 0.1, "B": 6.0, "beta": 0.25, "E": 0.4}
    found = laws.crossings("additive", additive_1, additive_2, 1e4)
    np.testing.assert_allclose(
        found[np.isfinite(found)], every_root("additive", additive_1, additive_2, 1e4), rtol=1e-9
    )
    power_1, power_2 = {"A": 40.0, "beta": 0.5, "E": 0.5}, {"A": 6.0, "beta": 0.25, "E": 0.45}
    found = laws.crossings("power", power_1, power_2)
    assert np.isfinite(found).sum() == 2
    np.testing.assert_allclose(found, every_root("power", power_1, power_2, None), rtol=1e-9)


@pytest.mark.parametrize(
    "law, groups, message",
    [
        ("multiplicative", [Group([], [], [])], "no points"),
        ("multiplicative", [Group([64, 128, 256, 512], [1.0, np.nan, 0.8, 0.7], [1, 1, 2, 2])], "finite"),
        ("multiplicative", [Group([64, 128, 256, 512], [1.0, np.inf, 0.8, 0.7], [1, 1, 2, 2])], "finite"),
        ("multiplicative", [Group([64, -1, 256, 512], [1.0, 0.9, 0.8, 0.7], [1, 1, 2, 2])], "Df"),
        ("multiplicative", [Group([64, 128, 256, 512], [1.0, 0.9, 0.8, 0.7], [0, 1, 2, 2])], "X"),
        ("multiplicative", [Group([64, 128, 256, 512], [1.0, 0.9, 0.8, 0.7])], "X"),
        ("multiplicative", [Group([64, 128], [1.0, 0.9], [1, 2])], "cannot determine"),
        ("power", [Group([64, 128], [1.0, 0.9]), Group([64], [0.7])], "cannot determine"),  # 3 points, 4 parameters
        ("additive", [Group([64, 128, 256], [1.0, 0.9], [1, 2, 3])], "different lengths"),
        ("quadratic", [Group([64, 128, 256], [1.0, 0.9, 0.8])], "unknown law"),
        ("power", [], "no groups"),
    ],
)
def test_bad_input_is_one_line(law, groups, message):
    with pytest.raises(laws.FitError, match=message) as error:
        solver.fit(law, groups)
    assert isinstance(error.value, ValueError) and "\n" not in str(error.value)


def test_bad_settings():
    group = [Group(DF, multiplicative_loss(ORDINARY), X)]
    for kwargs, message in (
        ({"objective": "l2"}, "objective"),
        ({"delta": 0.0}, "delta"),
        ({"init_grid": {"slope": [1.0]}}, "init_grid"),
        ({"strategy": "magic"}, "strategy"),
        ({"starts": [[1.0, 2.0]]}, "start vectors"),
    ):
        with pytest.raises(laws.FitError, match=message):
            solver.fit("multiplicative", group, **kwargs)


def test_wild_starts_stay_finite():
    loss = multiplicative_loss(ORDINARY)
    for objective in ("huber", "log-huber"):
        result = solver.fit(
            "multiplicative",
            [Group(DF, loss, X)],
            objective=objective,
            starts=[[80.0, -3.0, -2.0, 30.0], [2.0, 0.2, 0.3, -0.7]],
        )
        assert np.isfinite(result.objective_value) and result.params[0]["alpha"] == pytest.approx(0.2, abs=1e-3)


def test_mean_absolute_deviation():
    assert statistics.mean_absolute_deviation([1.0, 2.0], [1.5, 1.0]) == pytest.approx(0.75)
    assert np.isnan(statistics.mean_absolute_deviation([], []))


def test_pearson():
    r, p = statistics.pearson([1.0, 0.9, 0.8, 0.7], [10, 20, 30, 41])
    assert r < -0.99 and p < 0.01
    assert all(np.isnan(statistics.pearson([1, 1, 1], [1, 2, 3])))
    assert all(np.isnan(statistics.pearson([1.0, 0.9, np.nan], [1, 2, 3])))  # fewer than three pairs


def test_bootstrap_helpers_are_seeded_and_resample_within_conditions():
    runs = [np.array([1.0, 2.0, 3.0]), np.array([5.0]), np.array([7.0, 9.0])]
    first = statistics.resample_condition_means(runs, 200, np.random.default_rng(0))
    second = statistics.resample_condition_means(runs, 200, np.random.default_rng(0))
    np.testing.assert_array_equal(first, second)
    assert first.shape == (200, 3)
    assert np.all(first[:, 1] == 5.0)  # one run: always itself
    assert set(np.round(first[:, 2], 6)) == {7.0, 8.0, 9.0}  # two runs: their possible means
    assert first[:, 0].min() >= 1.0 and first[:, 0].max() <= 3.0 and first[:, 0].std() > 0.1
    weights = statistics.case_resample_weights(10, 50, np.random.default_rng(1))
    assert weights.shape == (50, 10) and np.all(weights.sum(axis=1) == 10)
    low, high = statistics.percentile_interval(np.arange(101.0))
    assert (low, high) == pytest.approx((2.5, 97.5))
    assert all(np.isnan(statistics.percentile_interval([np.nan])))
