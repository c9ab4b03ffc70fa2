"""One tidy table of all runs: metrics.csv (a row per finetuning run), its mean over seeds,
pretrain.csv (a row per base model) and base_transfer.csv (few-shot scores of base models).

Runs with a zero-/few-shot evaluation (transfer.json beside eval.json) get its scores as columns
zero_shot_bleu, zero_shot_chrf, few_shot_<k>_bleu, few_shot_<k>_chrf (translation) and
few_shot_<k>_rougeL (summarization); other runs leave them empty.
A learned metric (BLEURT: evaluate.metrics) adds its score and checkpoint columns (bleurt,
bleurt_checkpoint) after rougeL, where any run has it: a study without one keeps today's columns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ftscale.plan.grid import AXES

CONDITION_COLUMNS = ["task", "family", "model", "params", "pretrain_tokens", "method", "pet_size", "finetune_examples"]
METRIC_COLUMNS = ["dev_loss", "test_loss", "bleu", "chrf", "rougeL", "steps", "train_seconds"]
LEARNED_COLUMNS = ["bleurt", "bleurt_checkpoint"]  # eval.json's keys (ftscale.evaluate.metrics.RESULT_KEYS)


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def pretrain_table(pretrain_dirs: list[str], runs: list[tuple[str, str, int]]) -> pd.DataFrame:
    rows = []
    for directory, (family, model, tokens) in zip(pretrain_dirs, runs):
        summary = read_json(Path(directory) / "pretrain.json")
        rows.append(
            {
                "family": family,
                "model": model,
                "params": summary["params"],
                "pretrain_tokens": tokens,
                **{k: summary[k] for k in ("train_loss", "val_loss", "steps", "train_seconds", "status")},
            }
        )
    return pd.DataFrame(rows)


def metrics_table(runs: list[dict], summaries: list[str], evals: list[str], pretrain: pd.DataFrame) -> pd.DataFrame:
    params_of = {(r.family, r.model, r.pretrain_tokens): r.params for r in pretrain.itertuples()}
    rows = []
    for run, summary_path, eval_path in zip(runs, summaries, evals):
        summary, result = read_json(summary_path), read_json(eval_path)
        row = {
            k: run[k]
            for k in ("task", "family", "model", "pretrain_tokens", "method", "pet_size", "finetune_examples", "seed")
        }
        row["params"] = params_of[(run["family"], run["model"], run["pretrain_tokens"])]
        row |= {
            "dev_loss": summary["dev_loss"],
            "test_loss": result.get("test_loss"),
            "bleu": result.get("bleu"),
            "chrf": result.get("chrf"),
            "rougeL": result.get("rougeL"),
            **{k: result[k] for k in LEARNED_COLUMNS if k in result},
            "steps": summary["steps"],
            "train_seconds": summary["train_seconds"],
            "status": summary["status"],
            "stop_reason": summary["stop_reason"],
            "best_step": summary["best_step"],
            "trainable_params": summary["trainable_params"],
        }
        row |= {f"axis_{axis}": axis in run["axes"] for axis in AXES}
        if run.get("transfer"):
            row |= transfer_scores(read_json(Path(eval_path).with_name("transfer.json")))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["pet_size"] = table["pet_size"].astype("Int64")  # empty for FMT
    # stop_reason: patience, max_steps, max_epochs or diverged; best_step: the step of the checkpoint kept
    first = CONDITION_COLUMNS + ["seed"] + metric_columns(table) + ["status", "stop_reason", "best_step"]
    return table[first + [c for c in table.columns if c not in first]]


def metric_columns(table: pd.DataFrame) -> list[str]:
    """METRIC_COLUMNS, with the learned metrics' columns the table has after rougeL."""
    at = METRIC_COLUMNS.index("rougeL") + 1
    return METRIC_COLUMNS[:at] + [c for c in LEARNED_COLUMNS if c in table] + METRIC_COLUMNS[at:]


def transfer_scores(result: dict) -> dict:
    """The flat scores of a transfer.json: zero_shot_bleu, few_shot_1_chrf, few_shot_1_rougeL, ..."""
    return {k: v for k, v in result.items() if k.startswith(("zero_shot_", "few_shot_")) and not isinstance(v, dict)}


def base_transfer_table(paths: list[str], runs: list[dict], pretrain: pd.DataFrame) -> pd.DataFrame:
    """Few-shot scores of the base models: a row per (task, base model)."""
    params_of = {(r.family, r.model, r.pretrain_tokens): r.params for r in pretrain.itertuples()}
    rows = [
        {
            "task": run["task"],
            "family": run["family"],
            "model": run["model"],
            "params": params_of[(run["family"], run["model"], run["pretrain_tokens"])],
            "pretrain_tokens": run["pretrain_tokens"],
            **transfer_scores(read_json(path)),
        }
        for path, run in zip(paths, runs)
    ]
    return pd.DataFrame(rows, columns=["task", "family", "model", "params", "pretrain_tokens"] if not rows else None)


def mean_over_seeds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric over a condition's successful runs; counts of ok and diverged runs."""
    keys = CONDITION_COLUMNS + [f"axis_{axis}" for axis in AXES]
    ok = metrics[metrics["status"] == "ok"]
    scores = [c for c in metric_columns(metrics) if c != "bleurt_checkpoint"] + [
        c for c in metrics.columns if c.startswith(("zero_shot_", "few_shot_"))
    ]
    mean = ok.groupby(keys, dropna=False)[scores].mean().reset_index()
    counts = (
        metrics.groupby(keys, dropna=False)["status"]
        .agg(runs="size", diverged=lambda s: int((s == "diverged").sum()))
        .reset_index()
    )
    return counts.merge(mean, on=keys, how="left")
