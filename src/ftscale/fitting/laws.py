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
    group_params: tuple[str, ...]  # each group (factor) has its own
    shared_params: tuple[str, ...]  # one value across groups
    formula: str


LAWS = {
    "power": Law("power", ("a",), ("beta", "e"), "L(Df) = A / Df^beta + E"),
    "multiplicative": Law("multiplicative", ("a", "alpha"), ("beta", "e"), "L(X, Df) = A * X^-alpha * Df^-beta + E"),
    "additive": Law("additive", ("a", "alpha", "b"), ("beta", "e"), "L(X, Df) = A / X^alpha + B / Df^beta + E"),
}
JOINT_LAWS = ("multiplicative", "additive")  # the laws of (X, Df), fitted on every axis


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
        if (
            g.loss.shape[-1:] != (n_g,)
            or (g.x is not None and g.x.shape != (n_g,))
            or (g.weight is not None and g.weight.shape[-1:] != (n_g,))
        ):
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

CROSSING_LOG_DF = (np.log(1e-300), np.log(1e300))  # "every positive Df": what a float holds


def crossings(law: str, params_1: dict, params_2: dict, x=None) -> np.ndarray:
    """Every finetuning-data size where methods 1 and 2 predict the same loss at X, over the whole
    positive Df range (CROSSING_LOG_DF): an array of shape (..., 2), the crossings in increasing Df,
    NaN where there is none (a result, not an error). Parameters and X may be arrays (bootstrap
    replicates, a grid of X); they broadcast, and the leading shape is theirs.

    Why at most two, and why the two slots are fixed. In u = log Df each law's gap is
        g(u) = exp(s1 - beta1 u) - exp(s2 - beta2 u) + c
    (multiplicative: s = a - alpha log X, c = E1 - E2; power: s = a; additive: s = b, c = the rest),
    whose derivative vanishes at most once, at u* = (log(beta1/beta2) + s1 - s2) / (beta1 - beta2).
    So g is monotone on each side of u*: slot 0 holds the crossing below u* (where the steeper power
    term decides), slot 1 the one above (where the E gap decides). Each side is solved by bisection
    on log Df (a bracketing method like brentq, vectorised); signs come from g scaled by its largest
    term, so no exp overflows at the ends of the range. Replaces a scan of [1, 1e12] (and fsolve,
    which from one start can stop at a non-root): no crossing is missed or clipped to a range."""
    s1, b1, c1 = _df_term(law, params_1, x)
    s2, b2, c2 = _df_term(law, params_2, x)
    s1, b1, s2, b2, c = np.broadcast_arrays(s1, b1, s2, b2, c1 - c2)
    low, high = (np.full(s1.shape, bound) for bound in CROSSING_LOG_DF)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        turning = (np.log(b1 / b2) + s1 - s2) / (b1 - b2)
    turning = np.where(np.isfinite(turning), np.clip(turning, low, high), high)  # none: one monotone piece

    def sign(u):
        t1, t2 = s1 - b1 * u, s2 - b2 * u
        with np.errstate(divide="ignore"):
            top = np.maximum(np.maximum(t1, t2), np.log(np.abs(c)))
        return np.sign(np.exp(t1 - top) - np.exp(t2 - top) + c * np.exp(-top))

    roots = []
    for lo, hi in ((low, turning), (turning, high)):
        sign_lo, sign_hi = sign(lo), sign(hi)
        found = (sign_lo != sign_hi) & (hi > lo) | (sign_lo == 0)
        for _ in range(80):  # halves a bracket of 1,381 in log Df to below float spacing
            mid = 0.5 * (lo + hi)
            same = sign(mid) == sign_lo
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
        roots.append(np.where(found, np.exp(0.5 * (lo + hi)), np.nan))
    below, above = roots
    above = np.where(np.isclose(above, below, rtol=1e-9), np.nan, above)  # a tangent point found twice
    return np.stack([below, above], axis=-1)


def _df_term(law: str, params: dict, x):
    """(s, beta, c) of a law written exp(s - beta log Df) + c at X."""
    log_scale = np.asarray(params["a"], float) if "a" in params else np.log(np.asarray(params["A"], float))
    if law == "power":
        return log_scale, np.asarray(params["beta"], float), np.asarray(params["E"], float)
    log_x = np.log(np.asarray(x, float))
    if law == "multiplicative":
        return (
            log_scale - np.asarray(params["alpha"], float) * log_x,
            np.asarray(params["beta"], float),
            np.asarray(params["E"], float),
        )
    if law == "additive":
        log_b = np.asarray(params["b"], float) if "b" in params else np.log(np.asarray(params["B"], float))
        return (
            log_b,
            np.asarray(params["beta"], float),
            np.asarray(params["A"], float) * np.exp(-np.asarray(params["alpha"], float) * log_x) + params["E"],
        )
    raise FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")


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
