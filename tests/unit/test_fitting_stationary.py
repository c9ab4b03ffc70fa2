"""Raw-loss Huber fits reach a stationary point (ftscale.fitting.newton), as diagnostics.converged
judges it, in Huber's linear regime: the toy's design (3 sizes x 3 Df per axis, the paper's joint
procedure over model, pretraining and PET axes) with noise of 0.01-0.05 nats against delta 1e-3,
so nearly every residual is 10-50 deltas wide.

Before the Newton polish (L-BFGS-B's end points): 2 of the 120 single fits of the sweep below
(up to 1.06x the tolerance) and, of 20 replicates fitted as one batch (the bootstrap's path), 7, 3
and 17 of 80 at noise 0.01, 0.02 and 0.05 (up to 216x) ended above the tolerance; after it, none
(max |gradient| at most 6.4e-6 of it: the float64 floor)."""

import decimal

import numpy as np
import pytest

from ftscale.analysis import procedure
from ftscale.fitting import diagnostics, laws, solver
from ftscale.fitting.laws import Group

TOLERANCE = procedure.resolve_options({})["diagnostics"]["gradient_tolerance"]  # the schema's
DELTA = solver.HUBER_DELTA  # the paper's 1e-3
FINETUNE_EXAMPLES = np.array([32.0, 128.0, 512.0])
SHARED = {"beta": 0.2, "E": 2.2}
AXES = {  # X values, A, alpha: losses near the toy's 2.2-3.3
    "model": ([1e5, 2e5, 4e5], 8.0, 0.15),
    "pretrain": ([2.5e5, 5e5, 1e6], 5.0, 0.08),
    "pet": ([50, 100, 200], 1.2, 0.002),
}


def toy_axes(noise: float, seeds) -> dict[str, Group]:
    """Each axis's 9 points; losses (len(seeds), 9), one row per seed's noise."""
    groups = {}
    for index, (axis, (sizes, scale, alpha)) in enumerate(AXES.items()):
        x, df = (a.ravel() for a in np.meshgrid(sizes, FINETUNE_EXAMPLES, indexing="ij"))
        clean = laws.predict("multiplicative", {"A": scale, "alpha": alpha} | SHARED, df, x)
        draws = [np.random.default_rng([seed, index]).normal(0, noise, x.size) for seed in seeds]
        groups[axis] = Group(df, clean + np.stack(draws), x)
    return groups


def unconverged(result: solver.Fit) -> list[float]:
    """max |gradient| / tolerance of each data set of a fit where it is above 1 (not converged)."""
    ratios = [diagnostics.gradient_ratio(g, result.n_points, DELTA, TOLERANCE) for g in np.atleast_2d(result.gradient)]
    return [r for r in ratios if not r <= 1]


def test_single_fits_in_hubers_linear_regime_are_stationary():
    """30 data sets (3 noise levels x 10 seeds), each through the joint procedure (step one and the
    three axes' step two) one at a time, as the analysis fits the full data: every fit converged."""
    flagged = {}
    for noise in (0.01, 0.02, 0.05):
        batch = toy_axes(noise, range(10))
        for seed in range(10):
            axes = {axis: Group(g.finetune_examples, g.loss[seed], g.x) for axis, g in batch.items()}
            for step, result in solver.fit_joint("multiplicative", axes, objective="huber", delta=DELTA).items():
                if ratios := unconverged(result):
                    flagged[(noise, seed, step)] = ratios
    assert flagged == {}


@pytest.mark.parametrize("noise", [0.01, 0.02, 0.05])
def test_a_batch_of_replicates_is_stationary_too(noise):
    """The bootstrap's path: 20 replicates fitted as one batch, warm-started from the first one's fit
    (as ftscale.analysis.procedure does): every replicate of every step converged."""
    batch = toy_axes(noise, range(20))
    first = solver.fit_joint(
        "multiplicative", {a: Group(g.finetune_examples, g.loss[0], g.x) for a, g in batch.items()}
    )
    results = solver.fit_joint("multiplicative", batch, warm=solver.warm_starts(first), objective="huber", delta=DELTA)
    assert {step: unconverged(result) for step, result in results.items()} == {step: [] for step in results}


@pytest.mark.parametrize("objective", ["huber", "log-huber"])
def test_the_generalized_hessian_is_the_gradients_derivative(objective):
    """Inside one piece (no residual within the finite difference's reach of +-delta) the Newton
    Hessian, Gauss-Newton part over the band plus every point's psi times its residual's curvature,
    is the derivative of the exact gradient; with weights too (a case-bootstrap replicate)."""
    truth = {"A": 8.0, "alpha": 0.15, "beta": 0.2, "E": 2.2}
    x, df = (a.ravel() for a in np.meshgrid(AXES["model"][0], FINETUNE_EXAMPLES, indexing="ij"))
    offset = np.array([-3e-3, 5e-4, 2e-3, -4e-4, 6e-3, -1.5e-3, 2e-4, -8e-3, 3e-3])  # 3 inside the band
    clean = laws.predict("multiplicative", truth, df, x)
    loss = clean + offset if objective == "huber" else clean * np.exp(offset)  # residuals -offset at the truth
    weight = np.array([1.0, 0.0, 2.0, 1.0, 1.0, 3.0, 0.0, 1.0, 1.0])
    names = laws.parameter_names("multiplicative")
    theta = np.array([[np.log(8.0), 0.15, 0.2, np.log(2.2)]])
    member = np.zeros(1, int)
    for w in (None, weight):
        problem = solver._Problem(
            "multiplicative", [Group(df, loss, x, w)], names, np.ones(4, bool), np.zeros((1, 4)), objective, DELTA
        )
        residuals, _ = problem.residuals(theta, member)
        assert 0 < np.sum(np.abs(residuals) < DELTA) < x.size  # both kinds of point
        assert np.min(np.abs(np.abs(residuals) - DELTA)) > 4e-4  # steps of 1e-7 stay in this piece
        value, _, gradient, _, hessian, _ = problem.newton_terms(theta, member)
        assert value == pytest.approx(problem.value_and_gradient(theta, member)[0], rel=1e-14)
        np.testing.assert_allclose(gradient, problem.value_and_gradient(theta, member)[1], rtol=1e-12)
        step = 1e-7
        numeric = np.stack(
            [
                problem.value_and_gradient(theta + step * e, member)[1][0]
                - problem.value_and_gradient(theta - step * e, member)[1][0]
                for e in np.eye(4)
            ],
            axis=1,
        ) / (2 * step)
        np.testing.assert_allclose(hessian[0], numeric, rtol=1e-6, atol=1e-6 * np.abs(hessian[0]).max())


def test_the_rounding_bounds_cover_float64s_errors():
    """The polish keeps a step that leaves f within its rounding error if it lowers the gradient, and
    stops once the gradient is within its own: both bounds must cover |float64 - 40-digit decimals|
    (each residual cancels two losses of size ~2.5, so it carries eps |y|, far above eps f), checked
    near fitted points, where the gradient is small and some residuals are inside the band."""
    x, df = (a.ravel() for a in np.meshgrid(AXES["model"][0], FINETUNE_EXAMPLES, indexing="ij"))
    names = laws.parameter_names("multiplicative")
    for seed in range(10):
        rng = np.random.default_rng(seed)
        loss = laws.predict("multiplicative", {"A": 8.0, "alpha": 0.15} | SHARED, df, x) + rng.normal(0, 0.02, x.size)
        problem = solver._Problem(
            "multiplicative", [Group(df, loss, x)], names, np.ones(4, bool), np.zeros((1, 4)), "huber", DELTA
        )
        theta = solver.fit("multiplicative", [Group(df, loss, x)]).theta[None] + rng.normal(0, 1e-9, 4)
        terms = problem.newton_terms(theta, np.zeros(1, int))
        exact_value, exact_gradient = _huber_exact(theta[0], x, df, loss)
        assert abs(terms.value[0] - exact_value) <= terms.value_error[0]
        assert np.all(np.abs(terms.gradient[0] - exact_gradient) <= terms.gradient_error[0])
        assert terms.value_error[0] > 100 * np.finfo(float).eps * terms.value[0]


def _huber_exact(theta, x, df, loss):
    """The Huber objective of the multiplicative law and its gradient, float64 inputs, in 40-digit
    decimal arithmetic."""
    with decimal.localcontext() as context:
        context.prec = 40
        delta = decimal.Decimal(DELTA)
        a, alpha, beta, e = (decimal.Decimal(float(v)) for v in theta)
        value, gradient = decimal.Decimal(0), [decimal.Decimal(0)] * 4
        for xi, di, yi in zip(x, df, loss):
            log_x, log_df = decimal.Decimal(float(xi)).ln(), decimal.Decimal(float(di)).ln()
            term = (a - alpha * log_x - beta * log_df).exp()
            r = term + e.exp() - decimal.Decimal(float(yi))
            clipped = min(abs(r), delta)
            value += clipped * (abs(r) - clipped / 2)
            psi = max(-delta, min(delta, r))
            gradient = [g + psi * d for g, d in zip(gradient, (term, -term * log_x, -term * log_df, e.exp()))]
        return float(value), np.array([float(g) for g in gradient])
