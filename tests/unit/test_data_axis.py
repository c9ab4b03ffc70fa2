"""The pretraining-data axis (pretrain.data_axis): which runs save which base checkpoints (grid),
their cost (plan), and the checkpoints a pretraining run saves on its way (pretrain)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from ftscale import config
from ftscale.plan import grid, sizing
from ftscale.plan import summary as grid_summary
from ftscale.runtime import integrity
from ftscale.train import pretrain, training
from tests.tiny_base import pretrain_args

ROOT = Path(__file__).resolve().parents[2]
SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
TOKENS_PER_STEP = 4 * 16  # batch_size x seq_len of the runs below


def jobs_of(cfg: dict, data_axis: str) -> dict[str, grid.PretrainJob]:
    cfg["pretrain"]["data_axis"] = data_axis
    config.validate(cfg)  # the grid reads a validated config: defaults filled in
    return grid.pretrain_jobs(cfg, grid.expand_conditions(cfg))


def test_checkpoints_make_one_run_per_model_and_family(toy_config):
    jobs = jobs_of(toy_config, "checkpoints")
    assert len(jobs) == len(toy_config["models"]) * len(toy_config["families"])
    base_model, budgets = toy_config["pretrain"]["base_model"], toy_config["pretrain"]["budgets"]
    *smaller, largest = budgets["ende"]
    base = jobs[f"ende/{base_model}-{largest}tok"]
    assert base.checkpoints == tuple(smaller) and len(smaller) == 2 and base.rule == "pretrain_ende_checkpoints"
    (enzh_budget,) = budgets["enzh"]
    assert jobs[f"enzh/{base_model}-{enzh_budget}tok"].checkpoints == ()  # one budget: nothing to save on the way
    assert {job.rule for job in jobs.values()} == {"pretrain", "pretrain_ende_checkpoints"}


DATA_AXES = yaml.safe_load(config.SCHEMA.read_text())["properties"]["pretrain"]["properties"]["data_axis"]["enum"]


@pytest.mark.parametrize("data_axis", DATA_AXES)
def test_every_base_checkpoint_has_exactly_one_producer(toy_config, data_axis):
    jobs = jobs_of(toy_config, data_axis)
    produced = [run_id for job in jobs.values() for run_id in job.base_checkpoints()]
    runs = grid.pretrain_runs(toy_config, grid.expand_conditions(toy_config))
    assert sorted(produced) == sorted(runs)  # none missing, none twice


def test_separate_trains_every_budget_on_its_own(toy_config):
    jobs = jobs_of(toy_config, "separate")
    assert len(jobs) == len(grid.pretrain_runs(toy_config, grid.expand_conditions(toy_config))) == 10
    assert all(job.checkpoints == () and job.rule == "pretrain" for job in jobs.values())


def test_paper_grid_has_ten_runs_for_nineteen_base_models():
    paper = config.load(ROOT / "configs" / "paper.yaml")
    assert grid.data_axis(paper) == "checkpoints"
    jobs = grid.pretrain_jobs(paper, grid.expand_conditions(paper))
    assert len(jobs) == 10 and sum(len(job.base_checkpoints()) for job in jobs.values()) == 19
    assert jobs["ende/1B-283000000000tok"].checkpoints == tuple(b * 10**9 for b in (84, 126, 167, 209))
    assert jobs["enzh/1B-206000000000tok"].checkpoints == tuple(b * 10**9 for b in (84, 105, 126, 147, 167))


def test_the_default_is_the_schemas_and_a_bad_value_is_one_line(tiny_config):
    schema = yaml.safe_load(config.SCHEMA.read_text())
    assert schema["properties"]["pretrain"]["properties"]["data_axis"]["default"] == "checkpoints"
    del tiny_config["pretrain"]["data_axis"]
    assert grid.data_axis(config.validate(tiny_config)) == "checkpoints"
    tiny_config["pretrain"]["data_axis"] = "annealed"
    with pytest.raises(config.ConfigError, match=r"^pretrain\.data_axis: 'annealed' is not one of") as error:
        config.validate(tiny_config)
    assert "\n" not in str(error.value)


def test_checkpoints_cost_no_pretraining_flops(toy_config):
    config.validate(toy_config)
    together = grid_summary.summarize(
        {**toy_config, "pretrain": {**toy_config["pretrain"], "data_axis": "checkpoints"}}
    )
    apart = grid_summary.summarize({**toy_config, "pretrain": {**toy_config["pretrain"], "data_axis": "separate"}})
    base_params = sizing.model_parameters(toy_config, toy_config["pretrain"]["base_model"])
    smaller = toy_config["pretrain"]["budgets"]["ende"][:-1]
    assert apart["flops"]["pretrain"] - together["flops"]["pretrain"] == 6 * base_params * sum(smaller)
    assert (together["pretrain_runs"], together["pretrain_jobs"]) == (apart["pretrain_runs"], 10 - 2) == (10, 8)
    assert together["jobs"]["pretrain"] == 7 and together["jobs"]["pretrain_ende_checkpoints"] == 1
    assert apart["jobs"]["pretrain"] == 10 and "pretrain_ende_checkpoints" not in apart["jobs"]


@pytest.mark.parametrize(
    "budgets, fragment",
    [
        ([640], "at 640 tokens: must be at least one batch (64 tokens) and less than the run's 640 tokens"),
        ([32], "at 32 tokens: must be at least one batch"),
        ([128, 160], "at 128 and 160 tokens fall on the same step"),
    ],
)
def test_bad_checkpoint_budgets_are_one_line(budgets, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as error:
        pretrain.checkpoint_steps({b: Path(f"c{b}") for b in budgets}, 640, TOKENS_PER_STEP)
    assert "\n" not in str(error.value)


# A real pretraining run: 12 steps of 64 tokens, checkpoints after 4 and 6 steps.
@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "tokens.npy"
    np.save(path, np.random.default_rng(0).integers(4, 300, size=4096, dtype=np.uint16))
    integrity.seal(path.parent)  # as the tokenize job leaves it
    return path


def run(stream: Path, out: Path, checkpoints: dict[int, Path] | None = None, **options) -> dict:
    steps = dict(tokens=12 * 64, seq_len=16, batch_size=4, log_every=2)
    return pretrain.pretrain(**pretrain_args(stream, out, size=SIZE, checkpoints=checkpoints, **steps) | options)


def weights(directory: Path) -> dict[str, np.ndarray]:
    return load_file(directory / "model.safetensors")


class Stop(Exception):
    """The fault injected right after the resumable state of a chosen step is written."""


def stop_after_saving_state(monkeypatch, at_step: int):
    save = training.save_resume_state

    def save_then_stop(path, model, optimizer, state, world):
        save(path, model, optimizer, state, world)
        if state["step"] == at_step:
            raise Stop

    monkeypatch.setattr(training, "save_resume_state", save_then_stop)


@pytest.fixture(scope="module")
def full_run(stream, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("full")
    run(stream, root / "full", {4 * 64: root / "at256", 6 * 64 + 10: root / "at394"})
    return root


def test_a_checkpoint_holds_the_weights_the_run_had_after_its_budget(stream, full_run, tmp_path, monkeypatch):
    # The same run stopped right after step 4 (its resumable state) had exactly these weights.
    stop_after_saving_state(monkeypatch, at_step=4)
    with pytest.raises(Stop):
        run(stream, tmp_path / "stopped", resume_path=tmp_path / "state.pt", checkpoint_every=4)
    state = torch.load(tmp_path / "state.pt", weights_only=False)["model"]
    saved = weights(full_run / "at256")
    assert saved.keys() == {k for k in state if k != "lm_head.weight"}  # tied: saved once
    for name, tensor in saved.items():
        assert np.array_equal(tensor, state[name].numpy()), name
    summary = json.loads((full_run / "at256" / "pretrain.json").read_text())
    final = json.loads((full_run / "full" / "pretrain.json").read_text())
    assert (summary["pretrain_tokens"], summary["steps"], summary["tokens_seen"], summary["checkpoint_of"]) == (
        256,
        4,
        256,
        768,
    )
    # Its train loss is what the run logged over steps 3-4; the lr is the full run's, not annealed.
    assert summary["train_loss"] == pytest.approx(next(h["train_loss"] for h in final["history"] if h["step"] == 4))
    assert summary["lr"] == training.cosine_lr(3, 12, 1e-2, 1e-3, 2) > 1e-3
    assert np.isfinite(summary["val_loss"]) and summary["status"] == "ok"
    # A budget between steps is saved after the steps a separate run of it would take (394 // 64 = 6).
    assert json.loads((full_run / "at394" / "pretrain.json").read_text())["steps"] == 6


def test_saving_checkpoints_does_not_change_the_run(stream, full_run, tmp_path):
    run(stream, tmp_path / "plain")
    assert weights(tmp_path / "plain").keys() == weights(full_run / "full").keys()
    assert all(np.array_equal(a, weights(full_run / "full")[k]) for k, a in weights(tmp_path / "plain").items())


def test_a_run_killed_after_a_checkpoint_resumes_and_still_delivers_it(stream, full_run, tmp_path, monkeypatch):
    checkpoints = {256: tmp_path / "at256", 394: tmp_path / "at394"}
    state = tmp_path / "resume" / "run.pt"
    stop_after_saving_state(monkeypatch, at_step=5)  # the checkpoint at step 4 is staged, not delivered
    with pytest.raises(Stop):
        run(stream, tmp_path / "full", checkpoints, resume_path=state, checkpoint_every=5)
    assert not checkpoints[256].exists() and (state.parent / "run.checkpoints" / "256tok" / "pretrain.json").exists()
    monkeypatch.undo()
    run(stream, tmp_path / "full", checkpoints, resume_path=state, checkpoint_every=5)
    for name in ("full", "at256", "at394"):
        assert weights(tmp_path / name).keys() == weights(full_run / name).keys()
        assert all(np.array_equal(a, weights(full_run / name)[k]) for k, a in weights(tmp_path / name).items()), name
    assert list(state.parent.iterdir()) == []  # state and staged checkpoints removed once complete
