"""A run whose loss turns non-finite is recorded as diverged, evaluated as such, and excluded from
fits with a warning that names it."""

import json

import pandas as pd
import pytest

from ftscale.analysis import points
from ftscale.evaluate import decode
from ftscale.train import finetune
from tests.tiny_base import finetune_args


def test_diverged_run_is_recorded_and_excluded(base, tmp_path):  # noqa: F811
    changed = dict(learning_rate=1e30, max_steps=10, max_epochs=10, eval_every=2, seed=0)
    summary = finetune.finetune(**finetune_args(base, tmp_path / "run", **changed))
    assert summary["status"] == "diverged" and summary["steps"] < 10 and summary["dev_loss"] is None
    result = decode.run_job(
        base=base / "base",
        checkpoint=tmp_path / "run" / "checkpoint",
        summary=tmp_path / "run" / "train.json",
        test=base / "task" / "dev",
        references="",
        tokenizer="",
        out=tmp_path / "eval.json",
        samples=tmp_path / "samples.jsonl",
        task_type="translation",
        method="fmt",
        max_source=32,
        max_target=32,
        max_new_tokens=4,
        batch_size=4,
        threads=1,
        target_lang="de",
    )
    assert result == {"status": "diverged"} == json.loads((tmp_path / "eval.json").read_text())
    assert (tmp_path / "samples.jsonl").read_text() == ""  # no generations, but the rule's output exists

    rows = pd.DataFrame(
        [
            {
                "task": "t",
                "model": "m1",
                "pretrain_tokens": 1000,
                "method": "fmt",
                "pet_size": None,
                "finetune_examples": df,
                "seed": 0,
                "test_loss": loss,
                "status": status,
            }
            for df, loss, status in ((16, 3.0, "ok"), (32, None, "diverged"), (64, 2.5, "ok"))
        ]
    )
    with pytest.warns(UserWarning, match=r"t/m1/1000/fmt-None/df32/seed0"):
        kept = points.usable_runs(rows)
    assert list(kept["finetune_examples"]) == [16, 64]
