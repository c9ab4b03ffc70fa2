"""Training curves (ftscale.runtime.tracking), read back as researchers read them: TensorBoard event
files through TensorBoard's own reader, MLflow runs through MlflowClient from a real SQLite store.

The curves are the ones train.json / pretrain.json record (same steps, same values); a resumed
segment continues them (each step once, as one uninterrupted run); what a killed attempt wrote past
its saved step is dropped; and neither package is imported where it is off."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ftscale.runtime import tracking
from tests.unit.test_segments import TINY_SEGMENT, finetune_run, in_segments, pretrain_run

ROOT = Path(__file__).resolve().parents[2]


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of a TensorBoard run directory, as TensorBoard loads it."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def f32(value: float) -> float:  # TensorBoard keeps scalars as float32
    import numpy as np

    return float(np.float32(value))


def curves_to(tmp_path: Path, run: str, mlflow: str | None = None, params: dict | None = None):
    config = {"study": "study", "tracking": {"tensorboard": True, "mlflow": mlflow}}
    found = tracking.spec(config, run, params)
    return tracking.CurvesSpec(**{**found.__dict__, "tensorboard": tmp_path / "tensorboard" / run})


def test_finetuning_curves_are_its_history_in_tensorboard(base, tmp_path):  # noqa: F811
    spec = curves_to(tmp_path, "finetune/c/seed0")
    summary = finetune_run(base, tmp_path / "run", max_steps=6, eval_every=2, curves=spec)
    curves = scalars(spec.tensorboard)
    assert set(curves) == {"loss/train", "loss/dev", "lr", "tokens_per_second"}
    history = summary["history"]
    assert curves["loss/train"] == [(h["step"], f32(h["train_loss"])) for h in history]
    assert curves["loss/dev"] == [(h["step"], f32(h["dev_loss"])) for h in history]
    assert [step for step, _ in curves["tokens_per_second"]] == [2, 4, 6]
    assert all(value > 0 for _, value in curves["tokens_per_second"])
    lrs = [value for _, value in curves["lr"]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]  # the cosine schedule, decaying


def test_pretraining_curves_continue_over_segments_as_one_run(base, tmp_path):  # noqa: F811
    straight_spec = curves_to(tmp_path / "tb-straight", "pretrain/f/m-4096tok")
    straight = pretrain_run(base, tmp_path / "straight", log_every=1, curves=straight_spec)
    spec = curves_to(tmp_path / "tb-segments", "pretrain/f/m-4096tok")
    resume = tmp_path / "segments.pt"
    chained, ends = in_segments(
        lambda: pretrain_run(
            base, tmp_path / "segments", log_every=1, resume_path=resume, segment_seconds=TINY_SEGMENT, curves=spec
        ),
        resume,
    )
    assert ends and len(ends) == straight["steps"] - 1
    expected = [(h["step"], f32(h["train_loss"])) for h in straight["history"]]
    assert scalars(straight_spec.tensorboard)["loss/train"] == expected
    segmented = scalars(spec.tensorboard)
    assert segmented["loss/train"] == expected  # each step once: continued, not restarted
    assert segmented["lr"] == scalars(straight_spec.tensorboard)["lr"]
    assert segmented["loss/val"] == [(straight["steps"], f32(straight["val_loss"]))]


def test_a_resumed_attempt_replaces_what_the_killed_one_wrote_past_its_saved_step(tmp_path):
    spec = curves_to(tmp_path, "finetune/c/seed0")
    killed = tracking.open_curves(spec)
    killed.start(0)
    for step in range(1, 5):  # saved at step 2, killed after writing steps 3 and 4
        killed.point(step, {"loss/train": float(step)}, throughput=False)
    killed.close()
    resumed = tracking.open_curves(spec)
    resumed.start(2)
    resumed.point(3, {"loss/train": 30.0}, throughput=False)
    resumed.close()
    assert scalars(spec.tensorboard)["loss/train"] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    fresh = tracking.open_curves(spec)  # a fresh start (step 0): the earlier attempts are gone
    fresh.start(0)
    fresh.point(1, {"loss/train": 7.0}, throughput=False)
    fresh.close()
    assert scalars(spec.tensorboard)["loss/train"] == [(1, 7.0)]


def test_mlflow_has_the_run_its_parameters_curves_and_final_metrics(base, tmp_path):  # noqa: F811
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    params = {"task": "translation", "method": "fmt", "finetune_examples": 16}
    spec = curves_to(tmp_path, "finetune/c/seed0", uri, params)
    summary = finetune_run(base, tmp_path / "run", max_steps=4, eval_every=2, curves=spec)
    tracking.log_final(spec, {"status": "ok", "test_loss": 2.5, "bleu": 1.25, "bleu_signature": "nrefs:1"})

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("study")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "finetune/c/seed0" and run.info.status == "FINISHED"
    assert run.data.params == {"task": "translation", "method": "fmt", "finetune_examples": "16"}
    assert {"test_loss": 2.5, "bleu": 1.25}.items() <= run.data.metrics.items()
    assert run.data.tags["ftscale_status"] == "ok"
    history = client.get_metric_history(run.info.run_id, "loss/dev")
    assert sorted((m.step, m.value) for m in history) == [(h["step"], h["dev_loss"]) for h in summary["history"]]
    assert scalars(spec.tensorboard)["loss/dev"]  # and TensorBoard's files beside it


def test_mlflow_gets_only_saved_points_and_a_fresh_start_replaces_the_run(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    spec = tracking.CurvesSpec(run="pretrain/f/m-1tok", mlflow=uri, experiment="study")
    killed = tracking.open_curves(spec)
    killed.start(0)
    killed.point(1, {"loss/train": 1.0}, throughput=False)
    killed.flush()  # the resume state saved at step 1
    killed.point(2, {"loss/train": 2.0}, throughput=False)
    del killed  # killed: never closed; step 2 was not saved
    resumed = tracking.open_curves(spec)
    resumed.start(1)
    resumed.point(2, {"loss/train": 20.0}, throughput=False)
    resumed.close()
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss/train")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 20.0)]
    fresh = tracking.open_curves(spec)
    fresh.start(0)
    fresh.close()
    (again,) = client.search_runs([client.get_experiment_by_name("study").experiment_id])
    assert again.info.run_id != run.info.run_id
    assert client.get_metric_history(again.info.run_id, "loss/train") == []


@pytest.mark.parametrize("tensorboard", [False, True])
def test_neither_package_is_imported_when_off(base, tmp_path, tensorboard):  # noqa: F811
    spec = None if not tensorboard else curves_to(tmp_path, "finetune/c/seed0")
    code = f"""
import json, pickle, sys
from pathlib import Path
from tests.unit.test_segments import finetune_run
finetune_run(Path({str(base)!r}), Path({str(tmp_path / "run")!r}), max_steps=2, eval_every=1,
             curves=pickle.loads({__import__("pickle").dumps(spec)!r}))
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & {{"tensorboard", "mlflow"}})))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert json.loads(out) == (["tensorboard"] if tensorboard else [])
