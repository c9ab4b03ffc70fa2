"""Training curves through the real workflow: every pretraining and finetuning job of the tiny study
leaves its TensorBoard run under results/tiny/tensorboard/ (one `tensorboard --logdir` for the whole
study), as train.json / pretrain.json record it; with tracking.mlflow set, a run's training and
evaluation land in a SQLite MLflow store, the study as one experiment; and the tracking keys rerun
nothing."""

import json
import shutil

import yaml

from ftscale.runtime import tracking
from tests.unit.test_tracking import f32, scalars
from tests.workflow.conftest import TINY, planned_jobs, snakemake, write_config

STUDY = "results/tiny"


def test_every_training_job_leaves_its_curves_in_the_studys_tensorboard_folder(tiny_run):
    board = tiny_run / STUDY / tracking.TENSORBOARD_DIR
    runs = sorted(path.parent for path in (tiny_run / STUDY / "finetune").glob("**/train.json"))
    assert runs
    for run in runs:
        history = json.loads((run / "train.json").read_text())["history"]
        curves = scalars(board / run.relative_to(tiny_run / STUDY))
        assert curves["loss/train"] == [(h["step"], f32(h["train_loss"])) for h in history], run
        assert [step for step, _ in curves["loss/dev"]] == [h["step"] for h in history]
        assert {"lr", "tokens_per_second"} <= set(curves)
    pretrained = [
        path.parent
        for path in (tiny_run / STUDY / "pretrain").glob("*/*/pretrain.json")
        if "checkpoint_of" not in json.loads(path.read_text())  # a job's own output, not a checkpoint on its way
    ]
    assert pretrained
    for base in pretrained:
        summary = json.loads((base / "pretrain.json").read_text())
        curves = scalars(board / base.relative_to(tiny_run / STUDY))
        assert curves["loss/train"] == [(h["step"], f32(h["train_loss"])) for h in summary["history"]], base
        assert curves["loss/val"][-1] == (summary["steps"], f32(summary["val_loss"]))
    assert {p.name for p in board.iterdir()} == {"finetune", "pretrain"}


def test_mlflow_tracking_logs_a_rerun_job_and_the_keys_rerun_nothing(tiny_copy):
    from mlflow.tracking import MlflowClient

    off = yaml.safe_load(TINY.read_text()) | {"tracking": {"tensorboard": False}}
    assert planned_jobs(tiny_copy, write_config(tiny_copy / "off.yaml", off)) == {}  # no param: nothing reruns
    config = yaml.safe_load(TINY.read_text()) | {"tracking": {"mlflow": "sqlite:///mlruns.db"}}
    config_file = write_config(tiny_copy / "mlflow.yaml", config)
    assert planned_jobs(tiny_copy, config_file) == {}
    run = next(path.parent for path in (tiny_copy / STUDY / "finetune").glob("**/lora-*/df16/seed0/train.json"))
    shutil.rmtree(run)
    name = run.relative_to(tiny_copy / STUDY).as_posix()
    snakemake(tiny_copy, "--cores", "1", f"{STUDY}/{name}/eval.json", config=config_file)

    client = MlflowClient(f"sqlite:///{tiny_copy / 'mlruns.db'}")
    (logged,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    evaluation = json.loads((run / "eval.json").read_text())
    history = json.loads((run / "train.json").read_text())["history"]
    assert logged.info.run_name == name and logged.info.status == "FINISHED"
    assert logged.data.params["method"] == "lora" and logged.data.params["finetune_examples"] == "16"
    assert logged.data.metrics["test_loss"] == evaluation["test_loss"]
    assert logged.data.metrics["bleu"] == evaluation["bleu"]
    dev = client.get_metric_history(logged.info.run_id, "loss/dev")
    assert sorted((m.step, m.value) for m in dev) == [(h["step"], h["dev_loss"]) for h in history]
