"""A metrics.csv-shaped table drawn from known scaling laws: the analysis and figure tests' input
(and bench/bench_fitting.py's), with no study to run."""

from pathlib import Path

import numpy as np
import pandas as pd

from ftscale.plan.grid import AXES, METHODS

PET_SIZES = {"prompt": (4, 8, 16), "lora": (2, 4, 8)}


def synthetic_metrics(
    tasks=("translation_ende", "summarization"),
    methods=METHODS,
    model_sizes=(1e5, 2e5, 4e5, 8e5),
    pretrain_tokens=(2.5e5, 5e5, 1e6),
    pet_sizes=PET_SIZES,
    finetune_examples=(64, 128, 256, 512, 1024),
    seeds=3,
    noise=2e-3,
    seed=0,
) -> pd.DataFrame:
    """A metrics.csv-shaped table drawn from known laws, for the tests and the fitting bench.
    Loss = A * N^-alpha_m * T^-alpha_p * P^-alpha_t * Df^-beta + E, so each axis is a multiplicative
    law with the others fixed, and the shared condition (smallest model, full corpus, default PET
    size) is one condition on every axis. FMT has a larger beta (more data-hungry).
    Sizes enter relative to the grid's smallest model, full corpus and smallest Df (mapped onto the
    defaults' 1e5, 1e6 and 64), so a paper-scale grid gives losses of the same shape."""
    rng = np.random.default_rng(seed)
    units = (1e5 / model_sizes[0], 1e6 / pretrain_tokens[-1], 64 / finetune_examples[0])
    truth = {"fmt": (0.45, 0.55, 2.0), "prompt": (0.25, 0.62, 1.0), "lora": (0.3, 0.58, 1.2)}  # beta, E, scale
    base, full = model_sizes[0], pretrain_tokens[-1]
    rows = []
    for t, task in enumerate(tasks):
        for method in methods:
            beta, irreducible, scale = truth.get(method, (0.3, 0.6, 1.0))
            sizes = pet_sizes.get(method, ()) if method != "fmt" else ()
            default = sizes[0] if sizes else None
            conditions = {}
            for m, n in enumerate(model_sizes):
                conditions.setdefault((f"m{m + 1}", n, full, default), set()).add("model")
            for tokens in pretrain_tokens:
                conditions.setdefault(("m1", base, tokens, default), set()).add("pretrain")
            for size in sizes:
                conditions.setdefault(("m1", base, full, size), set()).add("pet")
            for (model, n, tokens, size), axes in conditions.items():
                for df in finetune_examples:
                    mean = (
                        20.0
                        * scale
                        * (1 + 0.2 * t)
                        * (n * units[0]) ** -0.2
                        * (tokens * units[1]) ** -0.08
                        * (size or 1) ** -0.002
                        * (df * units[2] / 40) ** -beta
                        + irreducible
                    )
                    for s in range(seeds):
                        loss = mean + rng.normal(0, noise)
                        summarize = task.startswith("summar")
                        quality = 100 * np.exp(-loss) + rng.normal(0, 0.5)
                        rows.append(
                            {
                                "task": task,
                                "family": "ende",
                                "model": model,
                                "params": int(n),
                                "pretrain_tokens": int(tokens),
                                "method": method,
                                "pet_size": size,
                                "finetune_examples": int(df),
                                "seed": s,
                                "dev_loss": loss + 0.01,
                                "test_loss": loss,
                                "bleu": None if summarize else quality,
                                "chrf": None if summarize else quality + 20,
                                "rougeL": quality if summarize else None,
                                "steps": 100,
                                "train_seconds": 1.0,
                                "status": "ok",
                                **{f"axis_{a}": a in axes for a in AXES},
                            }
                        )
    table = pd.DataFrame(rows)
    table["pet_size"] = table["pet_size"].astype("Int64")
    return table


# The paper's Table 4 for WMT14 En-De (Zhang et al. 2024), as (A_m, alpha_m, A_p, alpha_p, beta, E):
# L = A_m N^-alpha_m Df^-beta + E on the model axis (N parameters), A_p T^-alpha_p Df^-beta + E on the
# pretraining axis (T tokens); Df in examples.
PAPER_ENDE_TABLE4 = {
    "fmt": (1.2e5, 0.52, 6.3e2, 0.21, 0.15, 0.75),
    "prompt": (3.9e3, 0.40, 2.7e2, 0.21, 0.051, 0.62),
    "lora": (2.1e3, 0.36, 1.4e2, 0.18, 0.081, 0.62),
}
PAPER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"


def paper_anchored_metrics(task="translation_ende", table4=PAPER_ENDE_TABLE4, noise=2e-3, seed=0):
    """A metrics.csv-shaped table on configs/paper.yaml's grid for one task (its models, budgets, Df
    per method and seeds; model and pretraining axes), each run's loss drawn from the paper's Table 4
    law of its axis plus Gaussian noise. The shared condition (base model on the full corpus) is one
    condition, with the model axis' law. Returns (table, config)."""
    from ftscale import config as study_config

    config = study_config.load(PAPER_CONFIG)
    config["tasks"] = {task: config["tasks"][task] | {"axes": ["model", "pretrain"]}}
    return _paper_grid_runs(config, table4, noise, seed), config


def paper_grid_metrics(table4=PAPER_ENDE_TABLE4, pet_alpha=0.05, noise=2e-3, seed=0):
    """paper_anchored_metrics on configs/paper.yaml's whole grid: every task (each drawn from the
    En-De Table 4 laws) and axis, 3,819 runs (bench/bench_analyze.py's paper-sized table). A PET-axis
    run's loss is its model-axis law times (pet_size / default size)^-pet_alpha. Returns (table, config)."""
    from ftscale import config as study_config

    config = study_config.load(PAPER_CONFIG)
    return _paper_grid_runs(config, table4, noise, seed, pet_alpha), config


def _paper_grid_runs(config, table4, noise, seed, pet_alpha=0.0) -> pd.DataFrame:
    from ftscale.plan import grid, sizing

    rng = np.random.default_rng(seed)
    rows = []
    for condition in grid.expand_conditions(config).values():
        a_m, alpha_m, a_p, alpha_p, beta, irreducible = table4[condition.method]
        params = sizing.model_parameters(config, condition.model, condition.family)
        df = condition.finetune_examples
        if "model" in condition.axes or "pet" in condition.axes:
            default = config["finetune"]["methods"][condition.method].get("default_size")
            pet = (condition.pet_size / default) ** -pet_alpha if condition.pet_size else 1.0
            mean = a_m * params**-alpha_m * pet * df**-beta + irreducible
        else:
            mean = a_p * condition.pretrain_tokens**-alpha_p * df**-beta + irreducible
        for s in grid.seeds(config):
            rows.append(
                {
                    "task": condition.task,
                    "family": condition.family,
                    "model": condition.model,
                    "params": params,
                    "pretrain_tokens": condition.pretrain_tokens,
                    "method": condition.method,
                    "pet_size": condition.pet_size,
                    "finetune_examples": df,
                    "seed": s,
                    "test_loss": mean + rng.normal(0, noise),
                    "status": "ok",
                    **{f"axis_{a}": a in condition.axes for a in AXES},
                }
            )
    table = pd.DataFrame(rows)
    table["pet_size"] = table["pet_size"].astype("Int64")
    return table


def every_root(law, params_1, params_2, x, points=200_001) -> list[float]:
    """Where two laws predict the same loss, found independently of ftscale.fitting.laws.crossings:
    sign changes of the loss gap on a dense log grid over 1e-300..1e300 examples, each refined by
    scipy's brentq."""
    from scipy.optimize import brentq

    from ftscale.fitting import laws

    def gap(log_df):
        with np.errstate(over="ignore", invalid="ignore"):
            return laws.predict(law, params_1, np.exp(log_df), x) - laws.predict(law, params_2, np.exp(log_df), x)

    grid = np.linspace(np.log(1e-300), np.log(1e300), points)
    values = gap(grid)
    finite = np.isfinite(values)
    grid, values = grid[finite], values[finite]
    change = np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)
    return [float(np.exp(brentq(gap, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-14))) for i in change]
