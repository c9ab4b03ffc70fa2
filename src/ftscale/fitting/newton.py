"""The last stage of ftscale.fitting.solver's minimiser: a semismooth Newton polish that takes a
Huber fit to a stationary point (ftscale.fitting.diagnostics judges convergence by the gradient).

Why. When most residuals are many deltas wide (the toy's 0.01-0.05 nats against delta 1e-3) nearly
every point sits in Huber's linear regime, rho(r) = delta |r| - delta^2/2. The objective's gradient
is continuous but its Hessian jumps wherever a point crosses +-delta, and, like an L1 fit at a
simplex vertex, the minimiser holds about q points (q free parameters) inside the band |r| < delta.
IRLS and L-BFGS-B approach it only linearly and stop where the objective's decrease drowns in its
rounding, at gradients near 1e-8.

What. Newton's method on gradient(theta) = 0, with the generalized Hessian of the exact objective
    H = sum_{|r_i| < delta} w_i grad r_i grad r_i^T  +  sum_i w_i psi_i hess r_i,   psi_i = clip(r_i, +-delta)
(points outside the band add no Gauss-Newton term, only their constant +-delta times their residual's
own curvature; solver._Problem.newton_terms builds it). Once the band holds the right points the
iteration is Newton's on a smooth system and converges quadratically (from L-BFGS-B's end points,
one or two steps). Each vector first tries Newton's own step (lambda 0); Levenberg-Marquardt damping,
(H + lambda diag(J^T W J)) step = -gradient with W the IRLS weights min(1, delta / |r|) (a diagonal
that is always positive), covers the steps where H is singular or indefinite (fewer than q points
in the band, or the band about to change). A step is kept when it lowers the objective by more than
its rounding error, or, within that rounding, when it lowers max |gradient|: the last Newton steps
change f by less than float64 resolves (each residual cancels two losses of size ~1), but still
shrink the gradient. A vector stops when every gradient component is within its rounding error
(on the toy's data ~1e-13, 1e-5 of diagnostics' tolerance), or when no step is kept any more.

Pure functions of arrays and one `evaluate` callable, vectorised over P parameter vectors (starts,
bootstrap replicates) as the rest of the solver.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SMALLEST_DAMPING = 1e-9  # lambda after a pure Newton step (lambda 0) fails; below it, back to 0
GIVE_UP_DAMPING = 1e6  # lambda past it: no step is kept any more


class Terms(NamedTuple):
    """The objective's terms at P parameter vectors (solver._Problem.newton_terms builds them)."""

    value: np.ndarray  # (P,) f
    value_error: np.ndarray  # (P,) a bound on f's rounding error
    gradient: np.ndarray  # (P, q)
    gradient_error: np.ndarray  # (P, q) a bound on the gradient's rounding error
    hessian: np.ndarray  # (P, q, q) the generalized Hessian
    scale: np.ndarray  # (P, q) the damping's diagonal, diag(J^T W J)


def polish(evaluate, theta: np.ndarray, member: np.ndarray, iterations: int = 100):
    """Damped semismooth Newton from each row of theta (P, q); member[p]: its data set;
    evaluate(theta, member) -> Terms. Returns the end vectors and their objective values. A vector
    moves only by kept steps (see the module's docstring), so it never ends worse than it started;
    it stops when its gradient is within its rounding error (nothing left to resolve) or no step is
    kept any more."""
    out_theta = theta.copy()
    terms = evaluate(theta, member)
    out_value = terms.value.copy()
    finite = np.logical_and.reduce([np.isfinite(a).reshape(len(a), -1).all(axis=1) for a in terms])
    rows = np.flatnonzero(finite)  # original index of each working vector
    theta, member, terms = out_theta[rows], member[rows], Terms(*(a[rows] for a in terms))
    damping = np.zeros(len(rows))  # Newton's own step first: near a solution it is the one that converges
    for _ in range(iterations):
        done = (damping > GIVE_UP_DAMPING) | np.all(np.abs(terms.gradient) <= terms.gradient_error, axis=1)
        if done.any():
            out_theta[rows[done]], out_value[rows[done]] = theta[done], terms.value[done]
            going = ~done
            rows, theta, member, damping = rows[going], theta[going], member[going], damping[going]
            terms = Terms(*(a[going] for a in terms))
        if len(rows) == 0:
            break
        candidate = theta + _damped_steps(terms.hessian, terms.scale, damping, terms.gradient)
        new = evaluate(candidate, member)
        kept = _kept(terms, new) & np.isfinite(candidate).all(axis=1)
        theta[kept] = candidate[kept]
        for current, fresh in zip(terms, new):
            current[kept] = fresh[kept]
        damping = np.where(kept, damping / 10.0, np.maximum(damping * 10.0, SMALLEST_DAMPING))
        damping[damping < SMALLEST_DAMPING] = 0.0
    out_theta[rows], out_value[rows] = theta, terms.value
    return out_theta, out_value


def _damped_steps(hessian, scale, damping, gradient):
    """Solve (H + lambda diag(scale)) step = -gradient per vector, equilibrated by its own diagonal
    (the parameters' units cancel, and as E -> 0 e's tiny row stays solvable), by SVD (batched, never
    raises) with singular values below q eps s_max dropped: a direction the objective cannot feel
    gets no step."""
    system = hessian + damping[:, None, None] * (scale[:, :, None] * np.eye(hessian.shape[-1]))
    size = np.sqrt(np.abs(np.diagonal(system, axis1=1, axis2=2)))
    unit = 1.0 / np.where(size > 0, size, 1.0)
    u, singular, v_t = np.linalg.svd(system * unit[:, :, None] * unit[:, None, :])
    kept = singular > singular.shape[1] * np.finfo(float).eps * singular[:, :1]
    inverse = np.where(kept, 1.0 / np.where(kept, singular, 1.0), 0.0)
    coordinates = np.matmul(u.transpose(0, 2, 1), (unit * gradient)[..., None])[..., 0] * inverse
    return -unit * np.matmul(v_t.transpose(0, 2, 1), coordinates[..., None])[..., 0]


def _kept(old: Terms, new: Terms) -> np.ndarray:
    """A step is kept when it lowers f beyond its rounding, or keeps f within its rounding and lowers
    max |gradient|."""
    lower = new.value < old.value - old.value_error
    level = (new.value <= old.value + old.value_error) & (
        np.abs(new.gradient).max(axis=1) < np.abs(old.gradient).max(axis=1)
    )
    return np.isfinite(new.value) & (lower | level)
