"""The fitter of ftscale.fitting.laws: a best-of-many-starts minimiser of the Huber objective,
vectorised over starts and bootstrap replicates, and the paper's two-step joint procedure.

Objectives: `huber` on (prediction - observed loss), delta HUBER_DELTA unless given (the schema's
analysis.huber_delta: the paper's 1e-3), summed over points (the paper);
`log-huber` on (log prediction - log observed), the log prediction taken as log-sum-exp of the log
terms (Hoffmann et al.), so no exponential can overflow. Predictions, Jacobians and both objectives
are a few vectorised numpy lines over the laws' design array, for any number of parameter vectors at
once, which is what the multi-start and the bootstrap need.

Minimiser (three stages, all deterministic):
 1. screen: every start of the grid (and every bootstrap replicate) is improved at once by a numpy-
    vectorised Levenberg-Marquardt on the Huber objective (iteratively reweighted Gauss-Newton:
    weights min(1, delta/|r|) make the step a majoriser of the Huber loss, so accepted steps only
    ever lower it) for a few steps; the best `survivors` per data set continue to convergence
    (stragglers stuck on plateaus no longer hold the whole batch);
 2. refine: per data set the best `refine` end points are polished by scipy's L-BFGS-B
    with the analytic gradient; the lowest objective wins (ties: the earlier start). For a batch of
    bootstrap replicates the polish is ONE L-BFGS-B over the stacked replicates (the objective is a
    sum of independent blocks), which keeps a thousand refits one scipy call.
 3. stationary: each data set's winner is taken by a semismooth Newton polish on the exact objective
    (ftscale.fitting.newton, vectorised over data sets) to a point whose gradient is at its rounding
    error: in Huber's linear regime (residuals many deltas wide) L-BFGS-B stops where f's rounding
    hides its progress, at gradients near ftscale.fitting.diagnostics' stationarity tolerance.
`strategy="loop"` is the plain reference: one scipy L-BFGS-B per start, best wins (the bench compares).

Past 300 lines because it is one algorithm: the objective and Jacobian of _Problem, the vectorised
screen, the polish and the joint procedure all work on _Problem's parameter layout (free and fixed
parameters, stacked replicates); split, each part would reach into another's internals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ftscale.config import schema_default
from ftscale.fitting import newton
from ftscale.fitting.laws import LAWS, FitError, Group, check_points, design_array, parameter_names, parameter_role

HUBER_DELTA = schema_default("analysis", "huber_delta")  # every fit's default: the schema owns it

OBJECTIVES = ("huber", "log-huber")
INIT_KIND = {"a": "log_scale", "b": "log_scale", "alpha": "exponent", "beta": "exponent", "e": "log_irreducible"}
DEFAULT_INIT_GRID = {"log_scale": [0.0, 2.5, 5.0], "exponent": [0.0, 0.5, 1.0], "log_irreducible": [-2.0, -0.5, 0.5]}
_HUBER_LOG_TERM_CAP = 50.0  # e^50 ~ 5e21: far beyond any loss, yet its square stays finite


# ------------------------------------------------------------------------------------ the problem


class _Problem:
    """The objective of one fit, evaluated for P parameter vectors at once. Vector p belongs to data
    set member[p] (a bootstrap replicate, or 0). Arrays are kept per law term, (P, n) each, and the
    Jacobian transposed, (P, q, n): contiguous layouts for the batched products of the hot loop."""

    def __init__(self, law, groups, names, free, template, objective, delta):
        design = design_array(law, groups, names)  # (n, K, p)
        free_design = design[:, :, free]
        self.n_terms = design.shape[1]
        self.q = int(free.sum())
        # log term k = theta @ term_design[k] + offset[k]; offset: the fixed parameters, per data set
        self.term_design = [np.ascontiguousarray(free_design[:, k, :].T) for k in range(self.n_terms)]  # (q, n)
        self.offset = [template[:, ~free] @ design[:, k, ~free].T for k in range(self.n_terms)]  # (B, n)
        # each term touches two or three parameters: the Jacobian is built from those columns only
        self.term_columns = [
            [(c, free_design[:, k, c]) for c in range(self.q) if np.any(free_design[:, k, c])]
            for k in range(self.n_terms)
        ]
        self.loss = _stack([g.loss for g in groups])
        self.log_loss = np.log(self.loss)
        self.target = self.loss if objective == "huber" else self.log_loss  # what a prediction is compared with
        weights = [g.weight for g in groups]
        self.weight = (
            None
            if all(w is None for w in weights)
            else _stack([np.ones(len(g.finetune_examples)) if g.weight is None else g.weight for g in groups])
        )
        self.huber = objective == "huber"
        self.delta = delta

    def residuals(self, theta, member):
        """Residuals r (P, n) and, per term, d r / d(log term) (K arrays (P, n))."""
        log_terms = [theta @ d + _rows(o, member) for d, o in zip(self.term_design, self.offset)]
        if self.huber:
            exp = [np.exp(np.minimum(t, _HUBER_LOG_TERM_CAP)) for t in log_terms]
            r = sum(exp) - _rows(self.loss, member)
            for e, t in zip(exp, log_terms):
                if t.max(initial=-np.inf) >= _HUBER_LOG_TERM_CAP:  # a capped term does not move
                    e[t >= _HUBER_LOG_TERM_CAP] = 0.0
            return r, exp  # d prediction / d log term = the term
        # log prediction = log-sum-exp of the log terms; its derivative is their softmax
        top = log_terms[0].copy()
        for t in log_terms[1:]:
            np.maximum(top, t, out=top)
        exp = [np.exp(t - top) for t in log_terms]
        total = sum(exp)
        return top + np.log(total) - _rows(self.log_loss, member), [e / total for e in exp]

    def jacobian_t(self, sensitivity):
        """(d r / d theta) transposed, (P, q, n)."""
        jac_t = np.zeros((len(sensitivity[0]), self.q, sensitivity[0].shape[1]))
        for share, columns in zip(sensitivity, self.term_columns):
            for column, coefficient in columns:
                jac_t[:, column, :] += share * coefficient
        return jac_t

    def value(self, r, member):
        """Huber loss summed over points."""
        rho = huber(r, self.delta)[0]
        if self.weight is not None:
            rho *= _rows(self.weight, member)
        return rho.sum(axis=-1)

    def value_and_gradient(self, theta, member):
        r, sensitivity = self.residuals(theta, member)
        psi = np.clip(r, -self.delta, self.delta)  # d rho / d r
        if self.weight is not None:
            psi *= _rows(self.weight, member)
        return self.value(r, member), np.matmul(self.jacobian_t(sensitivity), psi[:, :, None])[:, :, 0]

    def newton_terms(self, theta, member):
        """ftscale.fitting.newton.Terms, per vector: the objective f, its gradient J^T w psi, each with
        its rounding error, the generalized Hessian J^T diag(w [|r| < delta]) J +
        sum_i w_i psi_i hess r_i, and diag(J^T W J) with the IRLS weights W = w min(1, delta/|r|)
        (the damping's scale). hess r_i, with log term_k = d_k . theta: sum_k term_k d_k d_k^T on raw
        losses; on logs (r = log sum_k term_k - log y, softmax s) sum_k s_k d_k d_k^T - grad r grad r^T.
        Rounding: r = prediction - y cancels two numbers of size |y| (log y on logs), so it carries
        ~eps (|r| + 2|y|); that moves rho by |psi| times it and psi, inside the band, by all of it;
        the gradient's sum adds eps |psi grad r| per point. Each bound is 4x those, summed."""
        r, sensitivity = self.residuals(theta, member)
        jac_t = self.jacobian_t(sensitivity)
        weight = 1.0 if self.weight is None else _rows(self.weight, member)
        psi = np.clip(r, -self.delta, self.delta) * weight
        inside = np.where(np.abs(r) < self.delta, weight, 0.0)
        hessian = np.matmul(jac_t * inside[:, None, :], jac_t.transpose(0, 2, 1))
        for share, design in zip(sensitivity, self.term_design):
            hessian += np.matmul(design * (psi * share)[:, None, :], design.T)
        if not self.huber:
            hessian -= np.matmul(jac_t * psi[:, None, :], jac_t.transpose(0, 2, 1))
        irls = irls_weights(r, self.delta) * weight
        scale = np.einsum("pqn,pqn,pn->pq", jac_t, jac_t, irls)
        gradient = np.matmul(jac_t, psi[:, :, None])[:, :, 0]
        residual_error = 4 * np.finfo(float).eps * (np.abs(r) + 2 * np.abs(_rows(self.target, member)))
        value_error = np.sum(np.abs(psi) * residual_error, axis=1)
        psi_error = inside * residual_error + 4 * np.finfo(float).eps * np.abs(psi)
        gradient_error = np.matmul(np.abs(jac_t), psi_error[:, :, None])[:, :, 0]
        return newton.Terms(self.value(r, member), value_error, gradient, gradient_error, hessian, scale)


def huber(r, delta: float):
    """Huber loss rho = c (|r| - c/2) with c = min(|r|, delta), and its derivative psi = clip(r, +-delta)."""
    a = np.abs(r)
    c = np.minimum(a, delta)
    return c * (a - 0.5 * c), np.clip(r, -delta, delta)


def irls_weights(r, delta: float):
    """min(1, delta/|r|): the weights that make a Gauss-Newton step on the Huber loss a majoriser of it."""
    return np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))


def _rows(per_set: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Each vector's row of a per-data-set array; one data set broadcasts without a copy."""
    return per_set if len(per_set) == 1 else per_set[member]


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate per-group (n_g,) or (B, n_g) arrays along points into (B or 1, n)."""
    rows = max(np.atleast_2d(a).shape[0] for a in arrays)
    return np.concatenate([np.broadcast_to(np.atleast_2d(a), (rows, np.shape(a)[-1])) for a in arrays], axis=1)


def _levenberg_marquardt(problem: _Problem, theta, member, iterations: int, tolerance: float = 1e-13):
    """Vectorised damped Gauss-Newton on the Huber objective for P parameter vectors at once.
    The Huber Hessian is approximated by J^T W J with IRLS weights w = min(1, delta/|r|) (a majoriser:
    every accepted step lowers the objective); Marquardt's diagonal scaling makes it invariant to the
    parameters' units, which matters when e must travel to log(5e-4). The working arrays hold only
    the vectors still moving; a finished vector is written out and dropped from them."""
    out_theta = theta.copy()
    r, sensitivity = problem.residuals(theta, member)
    out_value = problem.value(r, member)
    keep = np.isfinite(out_value)
    rows = np.flatnonzero(keep)  # original index of each working vector
    theta, r, member, value = out_theta[keep], r[keep], member[keep], out_value[keep]
    jac_t = problem.jacobian_t([s[keep] for s in sensitivity])
    damping = np.full(len(rows), 1e-3)
    eye = np.eye(theta.shape[1])
    for _ in range(iterations):
        if len(rows) == 0:
            break
        irls = irls_weights(r, problem.delta)
        if problem.weight is not None:
            irls *= _rows(problem.weight, member)
        weighted_t = jac_t * irls[:, None, :]
        gradient = np.matmul(weighted_t, r[:, :, None])[:, :, 0]  # = J^T (w * clip(r)): the exact gradient
        hessian = np.matmul(weighted_t, jac_t.transpose(0, 2, 1))
        diagonal = np.diagonal(hessian, axis1=1, axis2=2)
        scale = np.maximum(diagonal, 1e-12 * diagonal.max(axis=1, keepdims=True) + 1e-300)
        system = hessian + (damping[:, None] * scale)[:, :, None] * eye
        step = -np.linalg.solve(system, gradient[..., None])[..., 0]
        candidate = theta + step
        r_new, sensitivity = problem.residuals(candidate, member)
        value_new = problem.value(r_new, member)
        better = np.isfinite(value_new) & (value_new < value)
        gain = np.where(better, (value - value_new) / np.maximum(value, 1e-300), 0.0)
        if better.all():
            theta, r, value, jac_t = candidate, r_new, value_new, problem.jacobian_t(sensitivity)
        elif better.any():
            theta[better], r[better], value[better] = candidate[better], r_new[better], value_new[better]
            jac_t[better] = problem.jacobian_t([s[better] for s in sensitivity])  # only where a step was taken
        damping = np.where(better, np.maximum(damping / 3.0, 1e-12), damping * 4.0)
        # a vector is done when its accepted step gains nothing, or when no step is accepted any more
        done = (better & (gain < tolerance)) | (damping > 1e10)
        if done.any():
            out_theta[rows[done]], out_value[rows[done]] = theta[done], value[done]
            going = ~done
            rows, theta, r, value, jac_t, member, damping = (
                rows[going],
                theta[going],
                r[going],
                value[going],
                jac_t[going],
                member[going],
                damping[going],
            )
    out_theta[rows], out_value[rows] = theta, value
    return out_theta, out_value


def _lbfgs(problem: _Problem, theta, member, max_iterations: int):
    """One scipy L-BFGS-B over the stacked vectors (a sum of independent blocks, so its optimum is each
    block's optimum). Returns the end vectors and each block's objective."""
    shape = theta.shape

    def objective(flat):
        value, gradient = problem.value_and_gradient(flat.reshape(shape), member)
        total = value.sum()
        if not np.isfinite(total):
            return np.inf, np.zeros_like(flat)
        return total, gradient.ravel()

    result = optimize.minimize(
        objective,
        theta.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-12},
    )
    end = result.x.reshape(shape)
    r, _ = problem.residuals(end, member)
    return end, problem.value(r, member)


# ------------------------------------------------------------------------------------ the fitter


@dataclass
class Fit:
    """Result of a fit. `theta` holds every parameter (logs for scales) in `names` order: shape (p,)
    for one data set, (B, p) for a batch. `start` is the free part, usable as `starts=` of a warm refit."""

    law: str
    names: list[str]
    theta: np.ndarray
    free: np.ndarray
    objective_value: float | np.ndarray
    n_points: int
    n_starts: int
    gradient: np.ndarray | None = None  # d objective / d free parameters at theta: (q,) or (B, q)

    @property
    def start(self) -> np.ndarray:
        return self.theta[..., self.free]

    @property
    def n_groups(self) -> int:
        return sum(1 for n in self.names if parameter_role(n) == "a")

    @property
    def params(self) -> list[dict]:
        """Per group: {a, A, alpha, b, B, beta, e, E} as the law has them (floats, or (B,) arrays)."""
        value = {n: self.theta[..., i] for i, n in enumerate(self.names)}
        scalar = self.theta.ndim == 1
        out = []
        for g in range(self.n_groups):
            p = {"a": value[f"a{g}"], "A": np.exp(value[f"a{g}"])}
            if f"alpha{g}" in value:
                p["alpha"] = value[f"alpha{g}"]
            if f"b{g}" in value:
                p |= {"b": value[f"b{g}"], "B": np.exp(value[f"b{g}"])}
            p |= {"beta": value["beta"], "e": value["e"], "E": np.exp(value["e"])}
            out.append({k: float(v) for k, v in p.items()} if scalar else p)
        return out


def grid_starts(free_names: list[str], init_grid: dict | None = None) -> np.ndarray:
    """All combinations of per-parameter start values, (S, q). Parameters of different groups with
    the same role (a0, a1) start alike: the groups move apart during the fit anyway, and the grid
    stays |values|^(number of roles) instead of growing with the number of groups."""
    grid = DEFAULT_INIT_GRID | {k: list(v) for k, v in (init_grid or {}).items()}
    unknown = set(grid) - set(DEFAULT_INIT_GRID)
    if unknown:
        raise FitError(f"unknown init_grid key(s) {sorted(unknown)}; use {sorted(DEFAULT_INIT_GRID)}")
    roles = list(dict.fromkeys(parameter_role(n) for n in free_names))
    if any(len(grid[INIT_KIND[role]]) == 0 for role in roles):
        raise FitError("init_grid lists must not be empty")
    combos = itertools.product(*(grid[INIT_KIND[role]] for role in roles))
    return np.array([[dict(zip(roles, combo))[parameter_role(n)] for n in free_names] for combo in combos], dtype=float)


def _batch_size(groups: list[Group], fixed: dict) -> int | None:
    sizes = {np.shape(g.loss)[0] for g in groups if np.ndim(g.loss) == 2}
    sizes |= {np.shape(g.weight)[0] for g in groups if g.weight is not None and np.ndim(g.weight) == 2}
    sizes |= {np.size(v) for v in fixed.values() if np.ndim(v) == 1}
    if len(sizes) > 1:
        raise FitError(f"batch sizes disagree: {sorted(sizes)}")
    return sizes.pop() if sizes else None


def fit(
    law: str,
    groups: list[Group],
    *,
    objective: str = "huber",
    delta: float = HUBER_DELTA,
    init_grid: dict | None = None,
    fixed: dict | None = None,
    starts=None,
    refine: int = 3,
    screen_iterations: int = 30,
    survivors: int = 16,
    max_iterations: int = 500,
    strategy: str = "batched",
) -> Fit:
    """Fit `law` to the groups (beta and e shared across groups), best over a grid of starts.

    fixed: parameters held at given values, by name ("beta", "e", "a0", ...; a role without index such
        as "alpha" fixes it in every group). A value may be a (B,) array: one per data set of a batch.
    starts: explicit start vectors of the free parameters, (S, q) or (q,); replaces the grid.
    screen_iterations, survivors, max_iterations: every start gets `screen_iterations` LM steps; the
        best `survivors` per data set continue up to `max_iterations`;
    refine: how many of those L-BFGS-B then polishes, per data set (the lowest objective wins).
    strategy: "batched" (vectorised screen + refine) or "loop" (plain scipy L-BFGS-B per start).
    A batch (losses of shape (B, n), or (B,) fixed values) returns a Fit whose theta is (B, p).
    """
    if objective not in OBJECTIVES:
        raise FitError(f"unknown objective {objective!r}; choose huber or log-huber")
    if not (np.isfinite(delta) and delta > 0):
        raise FitError(f"the Huber delta must be positive, got {delta}")
    if law not in LAWS:
        raise FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")
    names = parameter_names(law, len(groups)) if groups else []
    unknown = [key for key in (fixed or {}) if key not in names and key not in {parameter_role(n) for n in names}]
    if unknown:
        raise FitError(f"cannot fix {unknown}: the {law} law's parameters are {names}")
    fixed = {
        n: v
        for key, v in (fixed or {}).items()
        for n in ([key] if key in names else [m for m in names if parameter_role(m) == key])
    }
    free = np.array([n not in fixed for n in names])
    check_points(law, groups, int(free.sum()))
    batch = _batch_size(groups, fixed)
    n_sets = batch or 1
    template = np.zeros((n_sets, len(names)))
    for i, n in enumerate(names):
        if n in fixed:
            template[:, i] = np.broadcast_to(np.asarray(fixed[n], dtype=float), (n_sets,))
    problem = _Problem(law, groups, names, free, template, objective, delta)
    free_names = [n for n, f in zip(names, free) if f]
    starts = grid_starts(free_names, init_grid) if starts is None else np.atleast_2d(np.asarray(starts, float))
    if starts.shape[-1] != len(free_names):
        raise FitError(f"start vectors have {starts.shape[-1]} values, the free parameters are {free_names}")
    if strategy == "loop":
        best_free, best_value = _fit_loop(problem, starts, n_sets)
    elif strategy == "batched":
        best_free, best_value = _fit_batched(
            problem, starts, n_sets, max(1, refine), screen_iterations, max(1, survivors, refine), max_iterations
        )
    else:
        raise FitError(f"unknown strategy {strategy!r}; choose batched or loop")
    failed = ~np.isfinite(best_value)
    if failed.all():
        raise FitError(f"no start of the {law} fit reached a finite objective; try other init_grid values")
    theta = template.copy()
    theta[:, free] = best_free
    theta[failed] = np.nan  # a batch member that failed: NaN, dropped by the intervals
    n_points = sum(len(g.finetune_examples) for g in groups)
    # the gradient at the end point: ftscale.fitting.diagnostics judges convergence by it
    with np.errstate(all="ignore"):
        _, gradient = problem.value_and_gradient(best_free, np.arange(n_sets))
    gradient[failed] = np.nan
    if batch is None:
        return Fit(law, names, theta[0], free, float(best_value[0]), n_points, len(starts), gradient[0])
    return Fit(law, names, theta, free, best_value, n_points, len(starts), gradient)


def gradient_at(
    law: str, groups: list[Group], theta, *, objective: str = "huber", delta: float = HUBER_DELTA
) -> np.ndarray:
    """d objective / d theta at a full parameter vector `theta` (in parameter_names(law, len(groups))
    order): what Fit.gradient holds at a fit's end point, at any other point."""
    names = parameter_names(law, len(groups))
    problem = _Problem(law, groups, names, np.ones(len(names), bool), np.zeros((1, len(names))), objective, delta)
    with np.errstate(all="ignore"):
        return problem.value_and_gradient(np.atleast_2d(np.asarray(theta, float)), np.zeros(1, int))[1][0]


def _best_rows(value, n_sets, per_set, keep):
    """Rows of the `keep` lowest values of each data set's `per_set` consecutive rows (ties: earlier)."""
    value = np.where(np.isfinite(value), value, np.inf).reshape(n_sets, per_set)
    order = np.argsort(value, axis=1, kind="stable")[:, :keep]
    return (np.arange(n_sets)[:, None] * per_set + order).ravel()


def _fit_batched(problem, starts, n_sets, refine, screen_iterations, survivors, max_iterations):
    n_starts = len(starts)
    # every (data set, start) pair is one vector: data set d, start s -> row d * n_starts + s
    member = np.repeat(np.arange(n_sets), n_starts)
    theta = np.tile(starts, (n_sets, 1))
    # screen: a few LM steps from every start, enough to find each start's basin
    theta, value = _levenberg_marquardt(problem, theta, member, min(screen_iterations, max_iterations))
    # the best `survivors` per data set go on to convergence; the rest would only cost time
    per_set = min(survivors, n_starts)
    rows = _best_rows(value, n_sets, n_starts, per_set)
    theta, member = theta[rows], member[rows]
    theta, value = _levenberg_marquardt(problem, theta, member, max_iterations)
    keep = min(refine, per_set)
    rows = _best_rows(value, n_sets, per_set, keep)
    candidates, screened, members = theta[rows], value[rows], member[rows]
    screened = np.where(np.isfinite(screened), screened, np.inf)
    if n_sets == 1:  # the paper's single fit: each candidate polished on its own (exact stopping rule)
        polished = [_lbfgs(problem, candidates[i : i + 1], members[i : i + 1], 2000) for i in range(len(rows))]
        refined = np.concatenate([p[0] for p in polished])
        refined_value = np.concatenate([p[1] for p in polished])
    else:  # bootstrap replicates: one L-BFGS-B over the stacked candidates
        refined, refined_value = _lbfgs(problem, candidates, members, 500)
    # L-BFGS-B never worsens a lone vector, but a stacked run may trade one block for another: keep the better
    worse = ~(refined_value <= screened)
    refined[worse], refined_value[worse] = candidates[worse], screened[worse]
    refined_value = np.where(np.isfinite(refined_value), refined_value, np.inf).reshape(n_sets, keep)
    best = np.argmin(refined_value, axis=1)  # argmin: first of equals
    pick = np.arange(n_sets) * keep + best
    # each data set's winner to a stationary point (L-BFGS-B stops where f's rounding hides progress)
    return newton.polish(problem.newton_terms, refined[pick], members[pick])


def _fit_loop(problem, starts, n_sets):
    """The plain reference: scipy L-BFGS-B from every start, one data set at a time."""
    best_free = np.zeros((n_sets, starts.shape[1]))
    best_value = np.full(n_sets, np.inf)
    for d in range(n_sets):
        member = np.array([d])
        for start in starts:
            end, value = _lbfgs(problem, start[None, :], member, 2000)
            if value[0] < best_value[d]:
                best_free[d], best_value[d] = end[0], value[0]
    return best_free, best_value


def fit_joint(
    law: str, axes: dict[str, Group], *, shared_axes=("model", "pretrain"), warm: dict | None = None, **fit_options
) -> dict[str, Fit]:
    """The paper's joint procedure. Step one: one fit over the `shared_axes` present (each its own a,
    alpha; PET excluded) estimates the shared beta and e. Step two: with beta and e fixed at those
    values, each axis (shared ones and the rest, e.g. PET) is refit on its own. Without any shared
    axis, each axis is fitted freely. Returns {"step_one": Fit (if any), axis: Fit, ...}.
    `warm` ({"step_one": start, axis: start} from an earlier result) replaces the init grid; with
    batched losses each replicate's step two uses that replicate's own beta and e."""
    warm = warm or {}
    joint = [a for a in shared_axes if a in axes]
    results, fixed = {}, {}
    if joint:
        step_one = fit(law, [axes[a] for a in joint], starts=warm.get("step_one"), **fit_options)
        results["step_one"] = step_one
        fixed = {
            "beta": step_one.theta[..., step_one.names.index("beta")],
            "e": step_one.theta[..., step_one.names.index("e")],
        }
    for axis, group in axes.items():
        results[axis] = fit(law, [group], fixed=fixed, starts=warm.get(axis), **fit_options)
    return results


def warm_starts(results: dict[str, Fit]) -> dict[str, np.ndarray]:
    """Start vectors for `fit_joint(..., warm=...)` from an earlier fit_joint result."""
    return {name: result.start for name, result in results.items()}
