"""One tidy table of all runs: metrics.csv (a row per finetuning run), its mean over seeds, and
pretrain.csv (a row per base model)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ftscale.grid import AXES

CONDITION_COLUMNS = ["task", "family", "model", "params", "pretrain_tokens", "method", "pet_size",
                     "finetune_examples"]
METRIC_COLUMNS = ["dev_loss", "test_loss", "bleu", "chrf", "rougeL", "steps", "train_seconds"]


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def pretrain_table(pretrain_dirs: list[str], runs: list[tuple[str, str, int]]) -> pd.DataFrame:
    rows = []
    for directory, (family, model, tokens) in zip(pretrain_dirs, runs):
        summary = read_json(Path(directory) / "pretrain.json")
        rows.append({"family": family, "model": model, "params": summary["params"], "pretrain_tokens": tokens,
                     **{k: summary[k] for k in ("train_loss", "val_loss", "steps", "train_seconds", "status")}})
    return pd.DataFrame(rows)


def metrics_table(runs: list[dict], summaries: list[str], evals: list[str], pretrain: pd.DataFrame) -> pd.DataFrame:
    params_of = {(r.family, r.model, r.pretrain_tokens): r.params for r in pretrain.itertuples()}
    rows = []
    for run, summary_path, eval_path in zip(runs, summaries, evals):
        summary, result = read_json(summary_path), read_json(eval_path)
        row = {k: run[k] for k in ("task", "family", "model", "pretrain_tokens", "method", "pet_size",
                                   "finetune_examples", "seed")}
        row["params"] = params_of[(run["family"], run["model"], run["pretrain_tokens"])]
        row |= {"dev_loss": summary["dev_loss"], "test_loss": result.get("test_loss"),
                "bleu": result.get("bleu"), "chrf": result.get("chrf"), "rougeL": result.get("rougeL"),
                "steps": summary["steps"], "train_seconds": summary["train_seconds"],
                "status": summary["status"], "trainable_params": summary["trainable_params"]}
        row |= {f"axis_{axis}": axis in run["axes"] for axis in AXES}
        rows.append(row)
    table = pd.DataFrame(rows)
    table["pet_size"] = table["pet_size"].astype("Int64")          # empty for FMT
    first = CONDITION_COLUMNS + ["seed"] + METRIC_COLUMNS + ["status"]
    return table[first + [c for c in table.columns if c not in first]]


def mean_over_seeds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric over a condition's successful runs; counts of ok and diverged runs."""
    keys = CONDITION_COLUMNS + [f"axis_{axis}" for axis in AXES]
    ok = metrics[metrics["status"] == "ok"]
    mean = ok.groupby(keys, dropna=False)[METRIC_COLUMNS].mean().reset_index()
    counts = metrics.groupby(keys, dropna=False)["status"].agg(
        runs="size", diverged=lambda s: int((s == "diverged").sum())).reset_index()
    return counts.merge(mean, on=keys, how="left")
