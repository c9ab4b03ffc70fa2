"""The rectified scaling law of finetuning (Lin et al., ICML 2024, arXiv 2402.02314) and its fitter.

    rectified   L(D) = B / (D_l + D^beta) + E

D is the number of finetuning examples; D_l, the "pre-learned data size", bends the curve flat at
small D (the pre-power phase) and L(0) = B / D_l + E is the zero-shot loss, so D = 0 rows are
usable. At D >> D_l^(1/beta) the law is the power law B / D^beta + E.

Parametrisation: theta = (b, l, beta, e) with B = e^b, D_l = e^l, E = e^e (as ftscale.fitting fits
scales in log space); beta is bounded to (0, BETA_MAX] so that 0^beta = 0 and the curve falls, and
E to at most the lowest observed loss (see E_FLOOR_LOG).
The law is not a sum of exponentials of terms linear in the parameters (log(D_l + D^beta) mixes
two of them), so the solver's batched design does not apply: this module runs scipy L-BFGS-B with
the analytic gradient from a grid of starts placed relative to the data, and keeps the best.

Objectives as in ftscale.fitting.solver: `huber` on (prediction - loss), `log-huber` on (log prediction - log
loss), summed over points with optional weights (case-bootstrap multiplicities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ftscale.fitting import laws, solver, statistics

FORMULA = "L(D) = B / (D_l + D^beta) + E"
NAMES = ("b", "l", "beta", "e")
N_PARAMS = len(NAMES)
BETA_MAX = 5.0
# Starts, relative to the data so that they suit any loss scale and any range of D:
START_BETA = (0.3, 0.7)
START_KNEE_QUANTILE = (None, 0.0, 0.5, 1.0)  # D_l^(1/beta) at these quantiles of log D; None: no knee
START_E_SHARE = (0.1, 0.7)  # E as a share of the lowest observed loss
# E is bounded to [e^-E_FLOOR_LOG, 1] x the lowest loss: an E drifting to 0 (a curve without a floor)
# would otherwise keep L-BFGS-B walking log E down for thousands of steps without changing the fit
E_FLOOR_LOG = 12.0
SCREEN_ITERATIONS, MAX_ITERATIONS = 25, 500


@dataclass
class RectifiedFit:
    """theta in NAMES order: (4,) for one fit; objective_value is the best objective reached."""

    theta: np.ndarray
    objective_value: float
    n_points: int

    @property
    def params(self) -> dict:
        b, l, beta, e = (float(v) for v in self.theta)
        return {"B": float(np.exp(b)), "D_l": float(np.exp(l)), "beta": beta, "E": float(np.exp(e))}


def predict(params: dict, finetune_examples) -> np.ndarray:
    """L(D) from {B, D_l, beta, E} (scalars, or (R,) arrays that broadcast against D as (R, 1))."""
    theta = _as_theta(params)
    if theta.ndim == 2:  # (4, R) -> (4, R, 1): one row of predictions per parameter set
        theta = theta[:, :, None]
    return _predict_log(theta, np.asarray(finetune_examples, float))[0]


def _as_theta(params: dict) -> np.ndarray:
    return np.array([np.log(params["B"]), np.log(params["D_l"]), params["beta"], np.log(params["E"])], dtype=float)


def _predict_log(theta, df):
    """L(D) and dL/dtheta (4, n) for theta in log parametrisation; D = 0 gives B / D_l + E."""
    b, l, beta, e = theta
    with np.errstate(divide="ignore"):
        log_df = np.log(df)
    scaled = np.where(df > 0, beta * log_df, -np.inf)  # log D^beta
    log_denominator = np.logaddexp(l, scaled)
    term = np.exp(b - log_denominator)  # B / (D_l + D^beta)
    share = np.exp(scaled - log_denominator)  # D^beta / (D_l + D^beta), 0 at D = 0
    power_slope = -term * share * np.where(df > 0, log_df, 0.0)  # dL/dbeta; 0 at D = 0
    gradient = np.stack([term, -term * (1 - share), power_slope, np.full_like(term, np.exp(e))])
    return term + np.exp(e), gradient


def _objective(theta, df, loss, weight, objective, delta):
    prediction, gradient = _predict_log(theta, df)
    if objective == "huber":
        residual = prediction - loss
    else:
        residual = np.log(prediction) - np.log(loss)
        gradient = gradient / prediction
    rho, psi = solver.huber(residual, delta)
    return float(np.sum(weight * rho)), gradient @ (weight * psi)


def check_points(df, loss, weight=None) -> None:
    """Raise laws.FitError (one line) for anything the rectified fit cannot use."""
    df, loss = np.asarray(df, float), np.asarray(loss, float)
    if df.shape != loss.shape or (weight is not None and np.shape(weight)[-1:] != df.shape):
        raise laws.FitError("loss, finetuning-data size and weight columns have different lengths")
    if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise laws.FitError("losses must be positive and finite (found NaN, inf or <= 0)")
    if not np.all(np.isfinite(df)) or np.any(df < 0):
        raise laws.FitError("finetuning-data sizes (Df) must be finite and >= 0 (0: the zero-shot loss)")
    if len(np.unique(df)) < N_PARAMS:
        raise laws.FitError(
            f"{len(np.unique(df))} distinct finetuning-data sizes cannot determine the "
            f"{N_PARAMS} free parameters of the rectified law"
        )


def grid_starts(df, loss) -> np.ndarray:
    """(S, 4) starts: every beta x knee x E of the START_ grids; b then puts the curve through the
    data's mean log excess loss (least squares in log space for that shape)."""
    df, loss = np.asarray(df, float), np.asarray(loss, float)
    log_positive = np.log(df[df > 0]) if np.any(df > 0) else np.zeros(1)
    starts = []
    for beta in START_BETA:
        for quantile in START_KNEE_QUANTILE:
            knee = log_positive.min() - 5.0 if quantile is None else np.quantile(log_positive, quantile)
            l = beta * knee
            for share in START_E_SHARE:
                e = np.log(share * loss.min())
                excess = np.maximum(loss - np.exp(e), 1e-3 * loss.min())
                scaled = np.where(df > 0, beta * np.log(np.where(df > 0, df, 1.0)), -np.inf)
                b = float(np.mean(np.log(excess) + np.logaddexp(l, scaled)))
                starts.append([b, l, beta, e])
    return np.array(starts)


def _minimise(start, df, loss, weight, objective, delta, max_iterations=MAX_ITERATIONS):
    top_e = float(np.log(loss.min()))
    bounds = [(None, None), (None, None), (1e-6, BETA_MAX), (top_e - E_FLOOR_LOG, top_e)]
    start = np.clip(start, [-np.inf, -np.inf, 1e-6, top_e - E_FLOOR_LOG], [np.inf, np.inf, BETA_MAX, top_e])
    result = optimize.minimize(
        _objective,
        start,
        args=(df, loss, weight, objective, delta),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-10},
    )
    return result.x, float(result.fun) if np.isfinite(result.fun) else np.inf


def fit(
    df, loss, *, weight=None, objective: str = "huber", delta: float = solver.HUBER_DELTA, starts=None, refine: int = 3
) -> RectifiedFit:
    """L-BFGS-B from every start ((S, 4), default grid_starts) for SCREEN_ITERATIONS; the `refine`
    lowest go on to convergence and the lowest objective wins (ties: the earlier start)."""
    if objective not in solver.OBJECTIVES:
        raise laws.FitError(f"unknown objective {objective!r}; choose huber or log-huber")
    if not (np.isfinite(delta) and delta > 0):
        raise laws.FitError(f"the Huber delta must be positive, got {delta}")
    check_points(df, loss, weight)
    df, loss = np.asarray(df, float), np.asarray(loss, float)
    weight = np.ones_like(loss) if weight is None else np.asarray(weight, float)
    starts = grid_starts(df, loss) if starts is None else np.atleast_2d(np.asarray(starts, float))
    with np.errstate(over="ignore", invalid="ignore"):
        # screen: a few iterations from every start find its basin; the best `refine` go on to convergence
        screened = [_minimise(start, df, loss, weight, objective, delta, SCREEN_ITERATIONS) for start in starts]
        order = np.argsort([value for _, value in screened], kind="stable")[:refine]
        polished = [_minimise(screened[i][0], df, loss, weight, objective, delta) for i in order]
    best, best_value = min(polished, key=lambda pair: pair[1])  # min: the first of equals
    if not np.isfinite(best_value):
        raise laws.FitError("no start of the rectified fit reached a finite objective")
    return RectifiedFit(best, best_value, len(df))


def bootstrap(
    result: RectifiedFit,
    df,
    loss,
    n_resamples: int,
    rng: np.random.Generator,
    *,
    objective: str = "huber",
    delta: float = solver.HUBER_DELTA,
) -> np.ndarray:
    """(R, 4) refits on case-bootstrap resamples (statistics.case_resample_weights), each started from
    the full-data optimum; a resample with fewer distinct sizes than parameters is NaN."""
    df, loss = np.asarray(df, float), np.asarray(loss, float)
    weights = statistics.case_resample_weights(len(df), n_resamples, rng)
    thetas = np.full((n_resamples, N_PARAMS), np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        for r, weight in enumerate(weights):
            if len(np.unique(df[weight > 0])) >= N_PARAMS:
                end, value = _minimise(result.theta, df, loss, weight, objective, delta)
                thetas[r] = end if np.isfinite(value) else np.nan
    return thetas


def params_of(thetas: np.ndarray) -> dict:
    """{B, D_l, beta, E} as (R,) arrays from (R, 4) thetas (e.g. bootstrap's)."""
    thetas = np.atleast_2d(thetas)
    return {"B": np.exp(thetas[:, 0]), "D_l": np.exp(thetas[:, 1]), "beta": thetas[:, 2], "E": np.exp(thetas[:, 3])}
