"""Which base model (or model x method) to finetune: rank candidates by the loss a law predicts at a
target finetuning-data size, from their runs at sizes up to a budget (Lin et al., ICML 2024).

Laws (LAWS):
    rectified   L(D) = B / (D_l + D^beta) + E   (ftscale.fitting.rectified; the only one that uses D = 0 rows)
    power       L(D) = A / D^beta + E           (ftscale.fitting)
    ats         accept-then-stop (Lin et al.): a line in log-log space through the largest sizes,
                extended towards smaller sizes while each next point stays within ATS_THRESHOLD
                standard deviations of the line's residuals; the first point that does not marks
                the phase transition, and it and all smaller sizes are left out (the smallest
                size always is, as in their code)
    auto        per candidate, the law with the lowest absolute error on its largest budget size
                when fitted without it (ties within `auto_tie`, and fall-backs, go by AUTO_ORDER)

Intervals and p_best: each candidate's rows are case-resampled `bootstrap` times and refitted with
the same law; low/high are the 95% percentile interval of the predicted loss, p_best the share of
replicates in which the candidate predicts the lowest loss (a failed refit cannot win).
Pure functions on numpy arrays and dicts; the CLI and the analysis read the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftscale.config import schema_default
from ftscale.fitting import laws, rectified, solver, statistics
from ftscale.fitting.statistics import INTERVAL_LEVEL

LAWS = ("rectified", "power", "ats", "auto")
# `select`'s default: accept-then-stop equals or beats every other law on all six of Lin et al.'s
# published settings (bench/bench_select.py: WMT19 and Gigaword at 1/8, 1/64, 1/512 of the target);
# auto loses on WMT19 at 1/64 (83.1/78.6 against 86.0/99.1), where a one-size hold-out picks the
# rectified law for curves at their knee and it extrapolates 64x too low
DEFAULT_LAW = schema_default("analysis", "which_model", "law")  # "ats": the schema owns it
AUTO_ORDER = ("ats", "power", "rectified")  # auto's candidates, in the order that wins ties
MIN_SIZES = {"rectified": rectified.N_PARAMS, "power": 3, "ats": 2}  # distinct sizes a fit needs
ATS_START = 3  # Lin et al.'s k: the line starts from the largest ATS_START sizes
ATS_THRESHOLD = 5.0  # Lin et al.'s delta: a point further than this many residual SDs stops it
# Held-out errors closer than this share of the held-out loss are a tie, which the simpler law
# (earlier in AUTO_ORDER) wins: one point at one size cannot tell apart laws closer than the run-to-run
# noise of a finetuning loss (~1-2%), and the fewer parameters, the steadier the long extrapolation
AUTO_TIE = schema_default("analysis", "which_model", "auto_tie")  # 0.02: the schema owns it
DEFAULT_OBJECTIVE = {"rectified": "huber", "power": "huber"}
# `ftscale select` refuses a target further than this factor beyond the largest size a candidate's law
# used (--max-extrapolation): Lin et al. extrapolate 64x (budgets of 1/64 of the target); far beyond
# that every law's ranking is a guess
MAX_EXTRAPOLATION = 100.0


@dataclass
class Candidate:
    """One model (or model x method): its runs' finetuning-data sizes and losses, any order."""

    model: str
    finetune_examples: np.ndarray
    loss: np.ndarray
    method: str | None = None
    extra: dict = field(default_factory=dict)  # carried into the result row (e.g. params)

    def __post_init__(self):
        self.finetune_examples = np.asarray(self.finetune_examples, float)
        self.loss = np.asarray(self.loss, float)


# ------------------------------------------------------------------------------------ one law


def usable_points(law: str, df: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows a law can fit: every law but the rectified one needs D > 0 (log D)."""
    keep = np.ones(len(df), bool) if law == "rectified" else df > 0
    return df[keep], loss[keep]


def ats_line(df: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of accept-then-stop's line log L = slope log D + intercept. Sizes with
    several rows use their mean log loss for the phase detection; the line is fitted to all rows."""
    sizes = np.unique(df)
    log_mean = np.array([np.mean(np.log(loss[df == s])) for s in sizes])
    log_size = np.log(sizes)
    accepted = min(ATS_START, len(sizes))
    # the smallest size only ever tests the line, as in Lin et al.'s code: it is never accepted into
    # it (their published figures, which bench/bench_select.py reproduces, depend on that)
    while accepted < len(sizes) - 1:
        slope, intercept = np.polyfit(log_size[-accepted:], log_mean[-accepted:], 1)
        spread = np.std(log_mean[-accepted:] - (slope * log_size[-accepted:] + intercept))
        miss = abs(log_mean[-accepted - 1] - (slope * log_size[-accepted - 1] + intercept))
        if miss > ATS_THRESHOLD * spread:
            break
        accepted += 1
    kept = df >= sizes[-accepted]
    slope, intercept = np.polyfit(np.log(df[kept]), np.log(loss[kept]), 1)
    return float(slope), float(intercept)


def predict_at(law: str, df, loss, target, *, start=None) -> float:
    """The loss `law` (rectified, power or ats) fitted to (df, loss) predicts at `target`.
    Raises laws.FitError when the rows cannot determine the law. `start`: a rectified warm start."""
    df, loss = usable_points(law, np.asarray(df, float), np.asarray(loss, float))
    n_sizes = len(np.unique(df))
    if n_sizes < MIN_SIZES[law]:
        where = "" if law == "rectified" else " > 0"
        raise laws.FitError(f"{n_sizes} distinct finetuning-data sizes{where}; the {law} law needs {MIN_SIZES[law]}")
    if law == "ats":
        slope, intercept = ats_line(df, loss)
        return float(np.exp(slope * np.log(target) + intercept))
    if law == "power":
        result = solver.fit("power", [laws.Group(df, loss)], objective=DEFAULT_OBJECTIVE["power"])
        return float(laws.predict("power", result.params[0], target))
    if law == "rectified":
        starts = None if start is None else [start]
        result = rectified.fit(df, loss, objective=DEFAULT_OBJECTIVE["rectified"], starts=starts)
        return float(rectified.predict(result.params, target))
    raise laws.FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")


def heldout_error(law: str, df: np.ndarray, loss: np.ndarray) -> float:
    """|prediction - mean observed loss| at the largest size, the law fitted to the smaller ones."""
    if len(np.unique(df)) < 2:
        raise laws.FitError("one finetuning-data size: nothing to hold out")
    largest = df.max()
    return abs(predict_at(law, df[df < largest], loss[df < largest], largest) - loss[df == largest].mean())


def choose_law(
    df: np.ndarray, loss: np.ndarray, every_error: bool = True, auto_tie: float = AUTO_TIE
) -> tuple[str, dict]:
    """auto: the law of AUTO_ORDER with the lowest held-out error (see heldout_error; errors within
    auto_tie of the held-out loss are a tie, won by the earlier law); where none can be validated,
    the first that can be fitted. Returns the law and each law's error (NaN: no fit).
    every_error=False stops at the first law validated when its error is within the tie of zero: no
    lower error can beat it, so the choice is the same, and the later laws' errors are left out."""
    errors = {}
    tie = auto_tie * float(np.mean(loss[df == df.max()])) if len(df) else 0.0
    for law in AUTO_ORDER:
        try:
            errors[law] = heldout_error(law, df, loss)
        except laws.FitError:
            errors[law] = float("nan")
        first = all(np.isnan(e) for e in list(errors.values())[:-1])
        if not every_error and first and errors[law] <= tie:
            break
    validated = [law for law in errors if np.isfinite(errors[law])]  # AUTO_ORDER's order
    if validated:
        lowest = min(errors[law] for law in validated)
        return next(law for law in validated if errors[law] <= lowest + tie), errors
    for law in AUTO_ORDER:
        if len(np.unique(usable_points(law, df, loss)[0])) >= MIN_SIZES[law]:
            return law, errors
    raise laws.FitError(
        f"{len(np.unique(df))} distinct finetuning-data sizes; every law needs at least {min(MIN_SIZES.values())} (> 0)"
    )


# ------------------------------------------------------------------------------------ the ranking


def _bootstrap(law: str, df, loss, target, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R,) predictions at the target from case-bootstrap resamples of the rows (NaN: refit failed)."""
    start = None
    if law == "rectified":  # warm start every replicate from the full-data optimum
        kept_df, kept_loss = usable_points(law, df, loss)
        start = rectified.fit(kept_df, kept_loss, objective=DEFAULT_OBJECTIVE["rectified"]).theta
    out = np.full(n_resamples, np.nan)
    for r, weight in enumerate(statistics.case_resample_weights(len(df), n_resamples, rng)):
        rows = np.repeat(np.arange(len(df)), weight.astype(int))
        try:
            out[r] = predict_at(law, df[rows], loss[rows], target, start=start)
        except laws.FitError:
            pass
    return out


def select(
    candidates: list[Candidate],
    *,
    budget: float,
    target: float,
    law: str = DEFAULT_LAW,
    bootstrap: int = 0,
    seed: int = 0,
    every_error: bool = True,
    auto_tie: float = AUTO_TIE,
) -> dict:
    """Rank candidates by predicted loss at `target` from their rows with D <= budget.
    Returns {"ranking": [row, ...] (lowest predicted loss first), "skipped": [{model, method, reason}],
    "law", "budget", "target", "bootstrap"}; a row has model, method, law (auto: the chosen one),
    predicted_loss, low, high, p_best, n_points (rows the law used), heldout_errors (auto only; with
    every_error=False only those choose_law needed), and the candidate's extra."""
    if law not in LAWS:
        raise laws.FitError(f"unknown law {law!r}; choose from {', '.join(LAWS)}")
    if not (np.isfinite(budget) and budget > 0 and np.isfinite(target) and target > 0):
        raise laws.FitError(f"budget and target must be positive, got {budget} and {target}")
    if bootstrap < 0:
        raise laws.FitError(f"bootstrap must be >= 0, got {bootstrap}")
    if target < budget:
        raise laws.FitError(
            f"the target {target:g} is below the budget {budget:g}: nothing to extrapolate "
            "(read the measured losses instead)"
        )
    rng = np.random.default_rng(seed)
    rows, skipped, replicates = [], [], []
    for candidate in candidates:
        within = candidate.finetune_examples <= budget
        df, loss = candidate.finetune_examples[within], candidate.loss[within]
        row = {"model": candidate.model, "method": candidate.method}
        try:
            chosen, errors = choose_law(df, loss, every_error, auto_tie) if law == "auto" else (law, None)
            predicted = predict_at(chosen, df, loss, target)
        except laws.FitError as error:
            skipped.append(row | {"reason": str(error)})
            continue
        samples = _bootstrap(chosen, df, loss, target, bootstrap, rng) if bootstrap else np.full(0, np.nan)
        low, high = statistics.percentile_interval(samples, INTERVAL_LEVEL)
        rows.append(
            row
            | {
                "law": chosen,
                "predicted_loss": predicted,
                "low": low,
                "high": high,
                "n_points": len(usable_points(chosen, df, loss)[0]),
                "extrapolation": target / float(df.max()),
            }
            | ({"heldout_errors": errors} if errors else {})
            | candidate.extra
        )
        replicates.append(samples)
    for row, share in zip(rows, _best_shares(replicates)):
        row["p_best"] = share
    ranking = sorted(rows, key=lambda r: (not np.isfinite(r["predicted_loss"]), r["predicted_loss"]))
    return {
        "ranking": ranking,
        "skipped": skipped,
        "law": law,
        "budget": budget,
        "target": target,
        "bootstrap": bootstrap,
        "extrapolation": max((r["extrapolation"] for r in rows), default=float("nan")),
    }


def refusal(result: dict, max_extrapolation: float = MAX_EXTRAPOLATION) -> str | None:
    """Why a ranking answers nothing (one line), or None: every candidate skipped, or a target further
    than max_extrapolation times beyond the largest size a candidate's law used."""
    if not result["ranking"]:
        first = result["skipped"][0] if result["skipped"] else None
        why = f" (e.g. {first['model']}: {first['reason']})" if first else ""
        return (
            f"no candidate can be ranked from runs up to the budget {result['budget']:g}: "
            f"{len(result['skipped'])} skipped{why}"
        )
    if result["extrapolation"] > max_extrapolation:
        return (
            f"the target {result['target']:g} is {result['extrapolation']:,.0f}x beyond the largest "
            f"finetuning-data size used; the limit is {max_extrapolation:g}x (--max-extrapolation)"
        )
    return None


def _best_shares(replicates: list[np.ndarray]) -> list[float]:
    """Per candidate, the share of bootstrap replicates in which it predicts the lowest loss."""
    if not replicates or replicates[0].size == 0:
        return [float("nan")] * len(replicates)
    losses = np.stack(replicates)  # (C, R)
    losses = np.where(np.isfinite(losses), losses, np.inf)
    usable = np.isfinite(losses).any(axis=0)
    if not usable.any():
        return [float("nan")] * len(replicates)
    winners = np.argmin(losses[:, usable], axis=0)
    return [float(np.mean(winners == c)) for c in range(len(replicates))]


def format_ranking(result: dict) -> str:
    """The ranking as a plain-text table (intervals and p_best only with a bootstrap), skipped
    candidates below it."""
    boot = bool(result["bootstrap"])
    lines = [
        f"{'rank':>4}  {'model':<28} {'method':<8} {'law':<9} {'predicted':>10} "
        + (f"{'95% low':>9} {'95% high':>9} {'p_best':>6} " if boot else "")
        + f"{'points':>6} {'extrap.':>8}"
    ]
    for rank, row in enumerate(result["ranking"], 1):
        lines.append(
            f"{rank:>4}  {str(row['model']):<28} {str(row['method'] or '-'):<8} {row['law']:<9} "
            f"{row['predicted_loss']:>10.4g} "
            + (f"{row['low']:>9.4g} {row['high']:>9.4g} {row['p_best']:>6.2f} " if boot else "")
            + f"{row['n_points']:>6} {row['extrapolation']:>7.3g}x"
        )
    for row in result["skipped"]:
        lines.append(
            f"skipped: {row['model']}" + (f" / {row['method']}" if row["method"] else "") + f": {row['reason']}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the study's own runs


def which_model(
    model_means: dict,
    *,
    law: str = DEFAULT_LAW,
    auto_tie: float = AUTO_TIE,
    bootstrap: int = 0,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[dict]:
    """Rank the model sizes of each (task, method) at its largest Df from the runs at the Df below it,
    beside the loss observed there. model_means: {(task, method): model-axis condition means with
    model, x, finetune_examples, test_loss}. Candidates that cannot be fitted come as rows with a
    `skipped` reason and no prediction; a (task, method) with fewer than two Df values is noted."""
    rows = []
    for (task, method), means in sorted(model_means.items()):
        sizes = sorted(set(means["finetune_examples"]))
        if len(sizes) < 2:
            if notes is not None:
                notes.append(f"which_model {task}/{method}: one finetuning-data size, nothing to extrapolate")
            continue
        budget, target = float(sizes[-2]), float(sizes[-1])
        observed = {
            m: float(g["test_loss"][g["finetune_examples"] == target].mean())
            for m, g in means.groupby("model", sort=False)
        }
        candidates = [
            Candidate(
                str(m),
                g["finetune_examples"],
                g["test_loss"],
                method,
                {"params": float(g["x"].iloc[0]), "observed_loss": observed[m]},
            )
            for m, g in means.groupby("model", sort=False)
        ]
        # the rows drop the held-out errors, so choose_law may skip those that cannot change its choice
        result = select(
            candidates,
            budget=budget,
            target=target,
            law=law,
            bootstrap=bootstrap,
            seed=seed,
            every_error=False,
            auto_tie=auto_tie,
        )
        ranked = [row | {"rank": rank} for rank, row in enumerate(result["ranking"], 1)]
        order = sorted(ranked, key=lambda r: (not np.isfinite(r["observed_loss"]), r["observed_loss"]))
        for observed_rank, row in enumerate(order, 1):
            row["observed_rank"] = observed_rank
        skipped = [
            row
            | {
                "params": next(c.extra["params"] for c in candidates if c.model == row["model"]),
                "observed_loss": observed[row["model"]],
            }
            for row in result["skipped"]
        ]
        for row in ranked + skipped:
            row.pop("heldout_errors", None)
            row.pop("extrapolation", None)
            rows.append({"task": task, "budget": budget, "target": target} | row)
    return rows
