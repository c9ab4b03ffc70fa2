"""metrics.csv carries each run's stop_reason and best_step from its train.json."""

import json

import pandas as pd

from ftscale.analysis import aggregate


def test_metrics_table_has_stop_reason_and_best_step(tmp_path):
    pretrain = pd.DataFrame([{"family": "ende", "model": "m1", "pretrain_tokens": 1000, "params": 123}])
    runs, summaries, evals = [], [], []
    for seed, (reason, best, steps) in enumerate([("patience", 8, 12), ("max_steps", 16, 16)]):
        runs.append(
            {
                "task": "t",
                "family": "ende",
                "model": "m1",
                "pretrain_tokens": 1000,
                "method": "lora",
                "pet_size": 2,
                "finetune_examples": 64,
                "seed": seed,
                "axes": ["model"],
            }
        )
        summary, result = tmp_path / f"train{seed}.json", tmp_path / f"eval{seed}.json"
        summary.write_text(
            json.dumps(
                {
                    "dev_loss": 1.5,
                    "steps": steps,
                    "train_seconds": 1.0,
                    "status": "ok",
                    "stop_reason": reason,
                    "best_step": best,
                    "trainable_params": 10,
                }
            )
        )
        result.write_text(json.dumps({"test_loss": 1.6}))
        summaries.append(str(summary))
        evals.append(str(result))
    table = aggregate.metrics_table(runs, summaries, evals, pretrain)
    assert list(table["stop_reason"]) == ["patience", "max_steps"] and list(table["best_step"]) == [8, 16]
    assert list(table.columns[list(table.columns).index("status") :][:3]) == ["status", "stop_reason", "best_step"]
