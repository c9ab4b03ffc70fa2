"""Can a fitted law be trusted? Three checks of one fit, pure functions of its parameters, the
objective's gradient at its end point and its bootstrap intervals:

- converged: the end point is stationary, max_j |d objective / d theta_j| <= tol * delta * n_points
  (each point moves the Huber objective by at most delta per unit of residual, so the gradient is
  measured in units of delta per point);
- at a bound: E < irreducible_floor (E at its bound 0: no irreducible loss), |log A| or |log B| >
  log_scale_limit (a scale no loss can need);
- degenerate: |alpha| or |beta| > exponent_limit (the curve is a step, not a power law), or a
  bootstrap interval of alpha or beta narrower than interval_width_floor * |estimate| (every
  replicate stuck on one point: the data do not determine it).

The limits are config keys (analysis.diagnostics, whose defaults src/ftscale/config.schema.yaml owns);
they are passed in, so this module imports nothing above it (the Huber delta's default is the
solver's, from the schema). Flags change no fitted number.
A fit is `flagged` when it did not converge, has a parameter at a bound, or is degenerate.
"""

from __future__ import annotations

import numpy as np

from ftscale.fitting.solver import HUBER_DELTA

LIMIT_KEYS = ("exponent_limit", "log_scale_limit", "irreducible_floor", "interval_width_floor", "gradient_tolerance")
EXPONENTS = ("alpha", "beta")
LOG_SCALES = ("a", "b")


def converged(gradient, n_points: int, delta: float, tolerance: float) -> bool | None:
    """Stationarity of the end point: max |gradient| <= tolerance * delta * n_points; None without a gradient."""
    if gradient is None:
        return None
    return bool(gradient_ratio(gradient, n_points, delta, tolerance) <= 1)


def gradient_ratio(gradient, n_points: int, delta: float, tolerance: float) -> float:
    """max |gradient| / (tolerance * delta * n_points): above 1, not converged (0 with nothing free,
    inf with a non-finite gradient)."""
    gradient = np.asarray(gradient, float)
    if gradient.size == 0:
        return 0.0  # nothing free: the fit is its fixed values
    if not np.all(np.isfinite(gradient)):
        return np.inf
    return float(np.max(np.abs(gradient)) / (tolerance * delta * max(1, n_points)))


def parameters_at_bound(params: dict, limits: dict) -> list[str]:
    """Names of the parameters at a bound: E below the floor, a log scale beyond the limit."""
    out = []
    for name in LOG_SCALES:
        if name in params and not abs(params[name]) <= limits["log_scale_limit"]:
            out.append(name.upper())
    if "E" in params and not params["E"] >= limits["irreducible_floor"]:
        out.append("E")
    return out


def degenerate_reasons(params: dict, limits: dict, intervals: dict | None = None) -> list[str]:
    """Why a fit is degenerate, one short phrase each (empty: it is not)."""
    reasons = []
    for name in EXPONENTS:
        if name in params and not abs(params[name]) <= limits["exponent_limit"]:
            reasons.append(f"|{name}| {abs(params[name]):.4g} > {limits['exponent_limit']:g}")
    for name in EXPONENTS:
        low, high = (intervals or {}).get(name, (None, None))
        if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
            continue
        if high - low <= limits["interval_width_floor"] * abs(params.get(name, 0.0)):
            reasons.append(f"{name} interval [{low:.6g}, {high:.6g}] of zero width")
    return reasons


def diagnose(
    params: dict,
    limits: dict,
    *,
    gradient=None,
    n_points: int = 0,
    delta: float = HUBER_DELTA,
    intervals: dict | None = None,
) -> dict:
    """{converged, at_bound, degenerate, flagged} of one fit (params: {a, A, alpha, beta, E, ...})."""
    missing = [k for k in LIMIT_KEYS if k not in limits]
    if missing:
        raise ValueError(f"diagnostics limits lack {missing}")
    result = {
        "converged": converged(gradient, n_points, delta, limits["gradient_tolerance"]),
        "at_bound": parameters_at_bound(params, limits),
        "degenerate": degenerate_reasons(params, limits, intervals),
    }
    result["flagged"] = result["converged"] is False or bool(result["at_bound"]) or bool(result["degenerate"])
    return result


def describe(diagnostics: dict | None) -> str:
    """One short text for a table cell or a panel: "" for a clean fit, e.g.
    "degenerate: |alpha| 43.85 > 5; at bound: A" for a flagged one."""
    if not diagnostics:
        return ""
    parts = []
    if diagnostics.get("converged") is False:
        parts.append("not converged")
    if diagnostics.get("at_bound"):
        parts.append("at bound: " + ", ".join(diagnostics["at_bound"]))
    if diagnostics.get("degenerate"):
        parts.append("degenerate: " + "; ".join(diagnostics["degenerate"]))
    return "; ".join(parts)
