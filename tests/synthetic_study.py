"""A metrics.csv-shaped table drawn from known scaling laws: the analysis and figure tests' input
(and bench/bench_fitting.py's), with no study to run."""
import numpy as np
import pandas as pd

from ftscale.plan.grid import AXES, METHODS

PET_SIZES = {"prompt": (4, 8, 16), "lora": (2, 4, 8)}


def synthetic_metrics(tasks=("translation_ende", "summarization"), methods=METHODS,
                      model_sizes=(1e5, 2e5, 4e5, 8e5), pretrain_tokens=(2.5e5, 5e5, 1e6),
                      pet_sizes=PET_SIZES, finetune_examples=(64, 128, 256, 512, 1024),
                      seeds=3, noise=2e-3, seed=0) -> pd.DataFrame:
    """A metrics.csv-shaped table drawn from known laws, for the tests and the fitting bench.
    Loss = A * N^-alpha_m * T^-alpha_p * P^-alpha_t * Df^-beta + E, so each axis is a multiplicative
    law with the others fixed, and the shared condition (smallest model, full corpus, default PET
    size) is one condition on every axis. FMT has a larger beta (more data-hungry).
    Sizes enter relative to the grid's smallest model, full corpus and smallest Df (mapped onto the
    defaults' 1e5, 1e6 and 64), so a paper-scale grid gives losses of the same shape."""
    rng = np.random.default_rng(seed)
    units = (1e5 / model_sizes[0], 1e6 / pretrain_tokens[-1], 64 / finetune_examples[0])
    truth = {"fmt": (0.45, 0.55, 2.0), "prompt": (0.25, 0.62, 1.0), "lora": (0.3, 0.58, 1.2)}   # beta, E, scale
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
                    mean = (20.0 * scale * (1 + 0.2 * t) * (n * units[0]) ** -0.2 * (tokens * units[1]) ** -0.08
                            * (size or 1) ** -0.002 * (df * units[2] / 40) ** -beta + irreducible)
                    for s in range(seeds):
                        loss = mean + rng.normal(0, noise)
                        summarize = task.startswith("summar")
                        quality = 100 * np.exp(-loss) + rng.normal(0, 0.5)
                        rows.append({"task": task, "family": "ende", "model": model, "params": int(n),
                                     "pretrain_tokens": int(tokens), "method": method, "pet_size": size,
                                     "finetune_examples": int(df), "seed": s, "dev_loss": loss + 0.01,
                                     "test_loss": loss, "bleu": None if summarize else quality,
                                     "chrf": None if summarize else quality + 20,
                                     "rougeL": quality if summarize else None, "steps": 100, "train_seconds": 1.0,
                                     "status": "ok", **{f"axis_{a}": a in axes for a in AXES}})
    table = pd.DataFrame(rows)
    table["pet_size"] = table["pet_size"].astype("Int64")
    return table
