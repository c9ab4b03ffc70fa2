"""Scaling laws of finetuning, as formulas, a fitter and metrics. Pure functions on numpy arrays.

Laws (Zhang et al. 2024; X is model size, pretraining tokens or PET size; Df finetuning examples):
    power            L(Df)    = A / Df^beta + E
    multiplicative   L(X, Df) = A * X^-alpha * Df^-beta + E
    additive         L(X, Df) = A / X^alpha + B / Df^beta + E
Scales are fitted in log space (A = e^a, B = e^b, E = e^e). A fit may span several groups of
points (factors) that share beta and E while each has its own a, alpha (and b): that is the
paper's joint step; a single group is the plain law.

Objectives: `huber` on (prediction - loss), as the paper; `log-huber` on (log prediction - log loss),
as Hoffmann et al. fitted the additive law. Minimiser: L-BFGS-B with analytic gradients from every
start of a grid; the best end point wins. Deterministic: no randomness but the bootstrap's seed.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

LAWS = {  # parameters of each group, then parameters shared by all groups
    "power": (("a",), ("beta", "e")),
    "multiplicative": (("a", "alpha"), ("beta", "e")),
    "additive": (("a", "alpha", "b"), ("beta", "e")),
}
INIT_KIND = {"a": "log_scale", "b": "log_scale", "alpha": "exponent", "beta": "exponent", "e": "log_irreducible"}
DEFAULT_INIT_GRID = {"log_scale": [0.0, 2.5, 5.0], "exponent": [0.0, 0.5, 1.0], "log_irreducible": [-2.0, -0.5, 0.5]}


class FitError(ValueError):
    """Bad input to a fit; str() is one line saying what is wrong."""


@dataclass
class Group:
    """Points of one factor: X (None for the power law), Df and observed loss."""
    finetune_examples: np.ndarray
    loss: np.ndarray
    x: np.ndarray | None = None

    def __post_init__(self):
        self.finetune_examples = np.asarray(self.finetune_examples, dtype=float)
        self.loss = np.asarray(self.loss, dtype=float)
        self.x = None if self.x is None else np.asarray(self.x, dtype=float)


@dataclass
class Fit:
    law: str
    params: list[dict]                 # per group: {A, alpha, B, beta, E, a, e, ...} as they apply
    objective_value: float
    n_points: int
    vector: np.ndarray = field(repr=False)


def _names(law: str, n_groups: int) -> list[str]:
    per_group, shared = LAWS[law]
    return [f"{name}{g}" for g in range(n_groups) for name in per_group] + list(shared)


def _log_terms(law: str, theta: dict, group: int, log_x, log_df) -> list[np.ndarray]:
    a, beta = theta[f"a{group}"], theta["beta"]
    if law == "power":
        return [a - beta * log_df]
    if law == "multiplicative":
        return [a - theta[f"alpha{group}"] * log_x - beta * log_df]
    return [a - theta[f"alpha{group}"] * log_x, theta[f"b{group}"] - beta * log_df]


def predict(law: str, params: dict, finetune_examples, x=None) -> np.ndarray:
    """Loss predicted by one group's parameters ({A, alpha, B, beta, E} as the law uses them)."""
    df = np.asarray(finetune_examples, dtype=float)
    if law == "power":
        return params["A"] * df ** -params["beta"] + params["E"]
    x = np.asarray(x, dtype=float)
    if law == "multiplicative":
        return params["A"] * x ** -params["alpha"] * df ** -params["beta"] + params["E"]
    return params["A"] * x ** -params["alpha"] + params["B"] * df ** -params["beta"] + params["E"]


def _objective(theta_free, free, template, names, law, groups, logs, objective, delta):
    theta_vec = template.copy()
    theta_vec[free] = theta_free
    theta = dict(zip(names, theta_vec))
    value, grad = 0.0, np.zeros_like(theta_vec)
    index = {n: i for i, n in enumerate(names)}
    for g, (group, (log_x, log_df)) in enumerate(zip(groups, logs)):
        log_terms = [np.minimum(t, 60.0) for t in _log_terms(law, theta, g, log_x, log_df)]
        terms = [np.exp(t) for t in log_terms]
        irreducible = np.exp(min(theta["e"], 60.0))
        prediction = sum(terms) + irreducible
        if objective == "huber":
            residual, scale = prediction - group.loss, 1.0
        else:   # log-huber: residual of logs; d log(pred) = d pred / pred
            residual, scale = np.log(prediction) - np.log(group.loss), 1.0 / prediction
        small = np.abs(residual) <= delta
        value += np.sum(np.where(small, 0.5 * residual ** 2, delta * (np.abs(residual) - 0.5 * delta)))
        psi = np.clip(residual, -delta, delta) * scale
        # d prediction / d parameter, one per parameter name
        grad[index[f"a{g}"]] += np.sum(psi * terms[0])
        grad[index["e"]] += np.sum(psi) * irreducible
        if law == "power":
            grad[index["beta"]] -= np.sum(psi * terms[0] * log_df)
        elif law == "multiplicative":
            grad[index[f"alpha{g}"]] -= np.sum(psi * terms[0] * log_x)
            grad[index["beta"]] -= np.sum(psi * terms[0] * log_df)
        else:
            grad[index[f"alpha{g}"]] -= np.sum(psi * terms[0] * log_x)
            grad[index[f"b{g}"]] += np.sum(psi * terms[1])
            grad[index["beta"]] -= np.sum(psi * terms[1] * log_df)
    return value, grad[free]


def check_points(groups: list[Group], law: str) -> None:
    n = sum(len(g.loss) for g in groups)
    if n == 0:
        raise FitError("no points to fit (empty table, or every point held out)")
    for g in groups:
        if len(g.loss) != len(g.finetune_examples) or (g.x is not None and len(g.x) != len(g.loss)):
            raise FitError("columns have different lengths")
        if not np.all(np.isfinite(g.loss)) or np.any(g.loss <= 0):
            raise FitError("losses must be finite and positive")
        if np.any(~np.isfinite(g.finetune_examples)) or np.any(g.finetune_examples <= 0):
            raise FitError("finetuning-data sizes must be positive")
        if law != "power" and (g.x is None or np.any(~np.isfinite(g.x)) or np.any(g.x <= 0)):
            raise FitError("factor sizes (X) must be positive")
    n_params = len(_names(law, len(groups)))
    if n < n_params:
        raise FitError(f"{n} points cannot determine the {n_params} parameters of the {law} law")


def fit(law: str, groups: list[Group], *, objective: str = "huber", delta: float = 1e-3,
        init_grid: dict | None = None, fixed: dict | None = None, starts: np.ndarray | None = None) -> Fit:
    """Fit `law` to the groups (shared beta and e across groups); `fixed` holds parameters by name
    (e.g. {"beta": 0.3, "e": -1.0}); `starts` overrides the grid with explicit start vectors."""
    if law not in LAWS:
        raise FitError(f"unknown law {law!r}; choose from {sorted(LAWS)}")
    if objective not in ("huber", "log-huber"):
        raise FitError(f"unknown objective {objective!r}; choose huber or log-huber")
    check_points(groups, law)
    names = _names(law, len(groups))
    fixed = fixed or {}
    free = np.array([n not in fixed for n in names])
    template = np.array([fixed.get(n, 0.0) for n in names], dtype=float)
    logs = [(None if g.x is None else np.log(g.x), np.log(g.finetune_examples)) for g in groups]
    if starts is None:
        grid = DEFAULT_INIT_GRID | (init_grid or {})
        kinds = sorted({INIT_KIND[n.rstrip("0123456789")] for n, f in zip(names, free) if f})
        starts = []
        for combo in itertools.product(*(grid[k] for k in kinds)):   # groups start alike
            value = dict(zip(kinds, combo))
            starts.append([value[INIT_KIND[n.rstrip("0123456789")]] for n, f in zip(names, free) if f])
    best = None
    for start in np.atleast_2d(np.asarray(starts, dtype=float)):
        result = optimize.minimize(_objective, start, jac=True, method="L-BFGS-B",
                                   args=(free, template, names, law, groups, logs, objective, delta),
                                   options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if np.isfinite(result.fun) and (best is None or result.fun < best.fun - 1e-15):
            best = result
    theta_vec = template.copy()
    theta_vec[free] = best.x
    theta = dict(zip(names, theta_vec))
    params = []
    for g in range(len(groups)):
        p = {"a": theta[f"a{g}"], "A": float(np.exp(theta[f"a{g}"])), "beta": theta["beta"],
             "e": theta["e"], "E": float(np.exp(theta["e"]))}
        if law != "power":
            p["alpha"] = theta[f"alpha{g}"]
        if law == "additive":
            p |= {"b": theta[f"b{g}"], "B": float(np.exp(theta[f"b{g}"]))}
        params.append({k: float(v) for k, v in p.items()})
    return Fit(law, params, float(best.fun), sum(len(g.loss) for g in groups), best.x)


def mean_absolute_deviation(predicted, observed) -> float:
    predicted, observed = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean(np.abs(predicted - observed))) if len(observed) else float("nan")


def critical_size(law: str, params_1: dict, params_2: dict, x: float | None,
                  low: float = 1.0, high: float = 1e12) -> float:
    """The Df where methods 1 and 2 predict the same loss at X, or NaN when the curves do not cross
    in [low, high]. Bracketing (brentq on log Df after a scan for a sign change) rather than fsolve:
    it cannot wander outside the range or report a non-root, and "no crossing" is explicit."""
    log_df = np.linspace(np.log(low), np.log(high), 400)

    def gap(log_d):
        d = np.exp(log_d)
        return predict(law, params_1, d, x) - predict(law, params_2, d, x)

    values = gap(log_df)
    change = np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)
    if values[0] == 0:
        return float(low)
    if len(change) == 0:
        return float("nan")
    i = change[0]
    return float(np.exp(optimize.brentq(gap, log_df[i], log_df[i + 1], xtol=1e-12)))


def critical_closed_form(params_1: dict, params_2: dict) -> tuple[float, float]:
    """H and gamma of Df_c = H * X^gamma for the multiplicative law, exact when E1 == E2:
    A1 X^-a1 D^-b1 = A2 X^-a2 D^-b2  =>  D = (A1/A2)^(1/(b1-b2)) * X^((a2-a1)/(b1-b2))."""
    beta_gap = params_1["beta"] - params_2["beta"]
    if beta_gap == 0:
        return float("nan"), float("nan")
    with np.errstate(over="ignore"):   # a huge H is a result (no practical crossing), not an error
        h = float(np.exp((params_1["a"] - params_2["a"]) / beta_gap))
    return h, (params_2["alpha"] - params_1["alpha"]) / beta_gap


def pearson(loss, metric) -> tuple[float, float]:
    """Pearson r and its p-value; NaN when fewer than three points or a constant column."""
    loss, metric = np.asarray(loss, float), np.asarray(metric, float)
    keep = np.isfinite(loss) & np.isfinite(metric)
    if keep.sum() < 3 or np.ptp(loss[keep]) == 0 or np.ptp(metric[keep]) == 0:
        return float("nan"), float("nan")
    result = stats.pearsonr(loss[keep], metric[keep])
    return float(result.statistic), float(result.pvalue)


def percentile_interval(samples, level: float = 0.95) -> tuple[float, float]:
    samples = np.asarray(samples, float)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))
