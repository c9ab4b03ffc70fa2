"""Statistics of fitted laws: the mean absolute error on fitted and held-out points (Delta_e,
Delta_h), Pearson correlation of loss with a generation metric, and the bootstrap (resampled
condition means, case-resampling weights, percentile intervals). Pure functions on numpy arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ftscale.fitting.laws import FitError

INTERVAL_LEVEL = 0.95  # bootstrap percentile intervals, in every table and selection


def mean_absolute_deviation(predicted, observed) -> float:
    """Delta_e on fitted points, Delta_h on held-out points; NaN when there are none."""
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean(np.abs(predicted - observed))) if observed.size else float("nan")


def pearson(loss, metric) -> tuple[float, float]:
    """Pearson r and its two-sided p-value (scipy.stats.pearsonr) over the points where both are
    finite; NaN when fewer than three such points or either column is constant."""
    loss, metric = np.asarray(loss, float), np.asarray(metric, float)
    keep = np.isfinite(loss) & np.isfinite(metric)
    if keep.sum() < 3 or np.ptp(loss[keep]) == 0 or np.ptp(metric[keep]) == 0:
        return float("nan"), float("nan")
    result = stats.pearsonr(loss[keep], metric[keep])
    return float(result.statistic), float(result.pvalue)


# ------------------------------------------------------------------------------------ bootstrap


def resample_condition_means(run_losses: list[np.ndarray], n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, C) means of each condition's runs resampled with replacement (as many draws as it has
    runs). Resampling within conditions keeps the design fixed, so all replicates fit as one batch;
    the unit of noise is the run (the paper's runs differ in the finetuning-data subset)."""
    counts = np.array([len(r) for r in run_losses])
    if np.any(counts == 0):
        raise FitError("a condition has no runs to resample")
    width = counts.max()
    padded = np.zeros((len(run_losses), width))
    for c, runs in enumerate(run_losses):
        padded[c, : len(runs)] = runs
    draws = np.floor(rng.random((n_resamples, len(run_losses), width)) * counts[None, :, None]).astype(int)
    used = np.arange(width)[None, None, :] < counts[None, :, None]
    picked = np.take_along_axis(np.broadcast_to(padded, draws.shape), draws, axis=2)
    return np.sum(picked * used, axis=2) / counts


def case_resample_weights(n_points: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) multiplicities of a case bootstrap (n draws of the n points with replacement): a fit
    weighted by them equals a fit on the resampled rows."""
    draws = rng.integers(0, n_points, (n_resamples, n_points))
    return np.stack([np.bincount(row, minlength=n_points) for row in draws]).astype(float)


def percentile_interval(samples, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap values; NaN when there are none."""
    samples = np.asarray(samples, float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))
