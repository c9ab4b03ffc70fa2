"""Scaling laws of finetuning as formulas: the laws, their points (groups), predictions, the design
array a fit is built on, input checks, and where two fitted laws cross (the critical data size).
Pure functions on numpy arrays (no pandas, no files).

Laws (Zhang et al. 2024; X = model size, pretraining tokens or PET size; Df = finetuning examples):
    power            L(Df)    = A / Df^beta + E
    multiplicative   L(X, Df) = A * X^-alpha * Df^-beta + E          (the paper's proposal)
    additive         L(X, Df) = A / X^alpha + B / Df^beta + E         (Chinchilla form)
Scales are fitted in log space: A = e^a, B = e^b, E = e^e.

Groups. One fit may span several groups of points (factors) that share beta and e while each group
has its own a, alpha (and b): the paper's joint step. A single group is the plain law. Parameter
names carry the group index (a0, alpha0, a1, ...); the shared ones do not (beta, e).

Every law is a sum of exponentials of terms that are LINEAR in the parameters, e.g. for the
multiplicative law log(A X^-alpha Df^-beta) = a - alpha log X - beta log Df and log E = e. A fit is
therefore described by one design array D (points x terms x parameters): log_terms = D @ theta
(`design_array`). The solver (ftscale.fitting.solver) works on that array alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Law:
    name: str
    group_params: tuple[str, ...]    # each group (factor) has its own
    shared_params: tuple[str, ...]   # one value across groups
    formula: str


LAWS = {
    "power": Law("power", ("a",), ("beta", "e"), "L(Df) = A / Df^beta + E"),
    "multiplicative": Law("multiplicative", ("a", "alpha"), ("beta", "e"), "L(X, Df) = A * X^-alpha * Df^-beta + E"),
    "additive": Law("additive", ("a", "alpha", "b"), ("beta", "e"), "L(X, Df) = A / X^alpha + B / Df^beta + E"),
}
JOINT_LAWS = ("multiplicative", "additive")   # the laws of (X, Df), fitted on every axis


class FitError(ValueError):
    """Bad input to a fit; str() is one line saying what is wrong."""


@dataclass
class Group:
    """Points of one factor. `loss` is (n,) for one data set or (B, n) for B data sets on the same
    design (bootstrap replicates); `weight` (same shapes) counts each point, e.g. case-bootstrap
    multiplicities; `x` is None for the power law."""
    finetune_examples: np.ndarray
    loss: np.ndarray
    x: np.ndarray | None = None
    weight: np.ndarray | None = None

    def __post_init__(self):
        self.finetune_examples = np.asarray(self.finetune_examples, dtype=float)
        self.loss = np.asarray(self.loss, dtype=float)
        self.x = None if self.x is None else np.asarray(self.x, dtype=float)
        self.weight = None if self.weight is None else np.asarray(self.weight, dtype=float)


# ----------------------------------------------------------------------------------- laws as formulas

def predict(law: str, params: dict, finetune_examples, x=None) -> np.ndarray:
    """Loss the law predicts with one group's parameters ({A, alpha, B, beta, E} as it uses them).
    Parameters may be arrays (one value per bootstrap replicate): they broadcast against the data."""
    df = np.asarray(finetune_examples, dtype=float)
    if law == "power":
        return params["A"] * df ** -params["beta"] + params["E"]
    x = np.asarray(x, dtype=float)
    if law == "multiplicative":
        return params["A"] * x ** -params["alpha"] * df ** -params["beta"] + params["E"]
    if law == "additive":
        return params["A"] * x ** -params["alpha"] + params["B"] * df ** -params["beta"] + params["E"]
    raise FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")


def parameter_names(law: str, n_groups: int = 1) -> list[str]:
    spec = LAWS[law]
    return [f"{name}{g}" for g in range(n_groups) for name in spec.group_params] + list(spec.shared_params)


def parameter_role(name: str) -> str:
    """A parameter's role without its group index: a0 -> a, alpha1 -> alpha, beta -> beta."""
    return name.rstrip("0123456789")


def design_array(law: str, groups: list[Group], names: list[str]) -> np.ndarray:
    """D[point, term, parameter] with log_terms = D @ theta (the last term is always log E = e)."""
    index = {n: i for i, n in enumerate(names)}
    blocks = []
    for g, group in enumerate(groups):
        log_df = np.log(group.finetune_examples)
        log_x = None if group.x is None else np.log(group.x)
        n_terms = 3 if law == "additive" else 2
        block = np.zeros((len(log_df), n_terms, len(names)))
        block[:, 0, index[f"a{g}"]] = 1.0
        if law == "power":
            block[:, 0, index["beta"]] = -log_df
        elif law == "multiplicative":
            block[:, 0, index[f"alpha{g}"]] = -log_x
            block[:, 0, index["beta"]] = -log_df
        else:
            block[:, 0, index[f"alpha{g}"]] = -log_x
            block[:, 1, index[f"b{g}"]] = 1.0
            block[:, 1, index["beta"]] = -log_df
        block[:, -1, index["e"]] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=0)


# ------------------------------------------------------------------------------------ checks

def check_points(law: str, groups: list[Group], n_free: int | None = None) -> None:
    """Raise FitError (one line) for anything a fit cannot use."""
    if law not in LAWS:
        raise FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")
    if not groups:
        raise FitError("no groups of points to fit")
    n = sum(len(g.finetune_examples) for g in groups)
    if n == 0:
        raise FitError("no points to fit (empty table, or every point held out)")
    for g in groups:
        n_g = len(g.finetune_examples)
        if g.loss.shape[-1:] != (n_g,) or (g.x is not None and g.x.shape != (n_g,)) or \
                (g.weight is not None and g.weight.shape[-1:] != (n_g,)):
            raise FitError("loss, finetuning-data size, X and weight columns have different lengths")
        if not np.all(np.isfinite(g.loss)):
            raise FitError("losses must be finite (found NaN or inf)")
        if np.any(g.loss <= 0):
            raise FitError("losses must be positive")
        if not np.all(np.isfinite(g.finetune_examples)) or np.any(g.finetune_examples <= 0):
            raise FitError("finetuning-data sizes (Df) must be positive and finite")
        if law != "power":
            if g.x is None:
                raise FitError(f"the {law} law needs factor sizes (X)")
            if not np.all(np.isfinite(g.x)) or np.any(g.x <= 0):
                raise FitError("factor sizes (X) must be positive and finite")
        if g.weight is not None and (not np.all(np.isfinite(g.weight)) or np.any(g.weight < 0)):
            raise FitError("weights must be finite and non-negative")
    n_free = len(parameter_names(law, len(groups))) if n_free is None else n_free
    if n < n_free:
        raise FitError(f"{n} points cannot determine the {n_free} free parameters of the {law} law")


# ------------------------------------------------------------------------------------ crossings

def critical_size(law: str, params_1: dict, params_2: dict, x=None, low: float = 1.0, high: float = 1e12,
                  scan_points: int = 400):
    """The finetuning-data size where methods 1 and 2 predict the same loss at X, NaN where their
    curves do not cross in [low, high] (a result, not an error); with several crossings, the smallest.
    Parameters may be (B,) arrays (bootstrap replicates): then the result is a (B,) array.

    Root finder: a scan of the loss gap on a log-spaced Df grid finds the first sign change, then
    bisection on log Df inside that bracket (a bracketing method, like brentq, vectorised over the
    replicates). Chosen over fsolve because fsolve from one start can stop at a non-root or outside
    the range, and with E1 != E2 the gap can cross zero twice or never: "no crossing" must be explicit."""
    log_grid = np.linspace(np.log(low), np.log(high), scan_points)
    b1 = {k: np.asarray(v, float)[..., None] for k, v in params_1.items()}
    b2 = {k: np.asarray(v, float)[..., None] for k, v in params_2.items()}

    def gap(log_df):
        df = np.exp(log_df)
        with np.errstate(over="ignore", invalid="ignore"):
            return predict(law, b1, df, x) - predict(law, b2, df, x)

    values = np.atleast_2d(gap(log_grid))                                     # (B, G)
    sign = np.sign(values)
    change = (sign[:, :-1] * sign[:, 1:] < 0) | (sign[:, :-1] == 0)
    found = change.any(axis=1)
    first = np.argmax(change, axis=1)
    lo, hi = log_grid[first], log_grid[first + 1]
    lo_value = np.take_along_axis(values, first[:, None], axis=1)[:, 0]
    exact = lo_value == 0
    for _ in range(64):             # each halves the bracket: 0.07 in log Df -> below float spacing
        mid = 0.5 * (lo + hi)
        mid_value = gap(mid[:, None]).reshape(-1)                             # one midpoint per row
        same = np.sign(mid_value) == np.sign(lo_value)
        lo, lo_value = np.where(same, mid, lo), np.where(same, mid_value, lo_value)
        hi = np.where(same, hi, mid)
    root = np.where(exact, log_grid[first], 0.5 * (lo + hi))
    result = np.where(found, np.exp(root), np.nan)
    return float(result[0]) if np.ndim(params_1["beta"]) == 0 else result


def critical_closed_form(params_1: dict, params_2: dict):
    """H and gamma of Df_c = H * X^gamma for the multiplicative law, exact when E1 == E2.
    Sign convention (the paper's, with the law written A X^-alpha Df^-beta):
        A1 X^-alpha1 Df^-beta1 = A2 X^-alpha2 Df^-beta2
        <=>  Df^(beta1 - beta2) = (A1/A2) X^(alpha2 - alpha1)
        <=>  Df = (A1/A2)^(1/(beta1-beta2)) * X^((alpha2-alpha1)/(beta1-beta2)) = H X^gamma.
    Computed from the log scales (log H = (a1 - a2)/(beta1 - beta2)) so a huge H is inf, not an
    overflow error; equal betas give NaN (parallel curves: no crossing or everywhere)."""
    beta_gap = np.asarray(params_1["beta"], float) - np.asarray(params_2["beta"], float)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        safe = np.where(beta_gap == 0, np.nan, beta_gap)
        h = np.exp((np.asarray(params_1["a"], float) - np.asarray(params_2["a"], float)) / safe)
        gamma = (np.asarray(params_2["alpha"], float) - np.asarray(params_1["alpha"], float)) / safe
    if np.ndim(h) == 0:
        return float(h), float(gamma)
    return h, gamma
