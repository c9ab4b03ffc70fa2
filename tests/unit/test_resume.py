"""A training job killed mid-run resumes from its checkpoint and ends exactly where an
uninterrupted run ends (bitwise on CPU). The kill is deterministic: the process kills itself with
SIGKILL right after saving the resume state of a given step (FTSCALE_FAULT=resume:<step>, ftscale.runtime.faults)."""

import json
import os
import signal
import subprocess
import sys

import pytest

RUN = """
import sys
from pathlib import Path
from ftscale.train import finetune
finetune.finetune(base_dir=Path(sys.argv[1]), method=sys.argv[2], pet_size=int(sys.argv[3]) or None,
                  learning_rate=float(sys.argv[4]), batch_size=4, parameter_scaling=False, max_steps=30,
                  max_epochs=100, eval_every=5, train_dir=Path(sys.argv[5]) / "train", dev_dir=Path(sys.argv[5]) / "dev",
                  finetune_examples=32, max_source=32, max_target=32, seed=3, out_dir=Path(sys.argv[6]),
                  resume_path=Path(sys.argv[7]), lr_min_divisor=10, warmup_steps=0, dev_batch_size=64)
"""


PRETRAIN = """
import sys
from pathlib import Path
from ftscale.train import pretrain
root = Path(sys.argv[1])
pretrain.pretrain(size=dict(layers=1, heads=2, head_dim=8, ffn_dim=32, model_dim=16), vocab_size=300,
                  train_tokens=root / "stream" / "tokens.npy", val_tokens=root / "stream" / "tokens.npy", tokens=4096,
                  seq_len=32, batch_size=8, lr_max=1e-2, lr_min=1e-3, warmup_steps=2, parameter_scaling=False, seed=0,
                  out_dir=Path(sys.argv[2]), resume_path=Path(sys.argv[3]), log_every=3, checkpoint_every=4,
                  val_windows=64)
"""


def run(code, args, kill_after_step=None):
    """The job in a fresh process; with kill_after_step, it SIGKILLs itself once that step's state is saved."""
    env = dict(os.environ)
    env.pop("FTSCALE_FAULT", None)
    env.pop("FTSCALE_RUN_PGID", None)
    if kill_after_step is not None:
        env["FTSCALE_FAULT"] = f"resume:{kill_after_step}"
    # a session of its own: the fault kills the job's whole process group, not pytest's
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True, start_new_session=True
    )


def killed_then_resumed(code, args, resume, outputs, kill_after_step):
    killed = run(code, args, kill_after_step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert resume.exists(), "no resumable state was written"
    assert not outputs.exists()  # killed before the end
    again = run(code, args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {resume} at step {kill_after_step}" in again.stdout
    assert not resume.exists()  # removed once complete


@pytest.mark.parametrize("method, pet, lr", [("fmt", 0, 1e-3), ("lora", 2, 1e-2)])
def test_killed_finetuning_resumes_to_identical_result(base, tmp_path, method, pet, lr):
    def args(name):
        return [base / "base", method, pet, lr, base / "task", tmp_path / name, tmp_path / f"{name}.pt"]

    assert run(RUN, args("straight")).returncode == 0
    killed_then_resumed(RUN, args("killed"), tmp_path / "killed.pt", tmp_path / "killed" / "train.json", 10)
    first = json.loads((tmp_path / "straight" / "train.json").read_text())
    second = json.loads((tmp_path / "killed" / "train.json").read_text())
    assert second["steps"] == first["steps"] == 30
    assert second["dev_loss"] == first["dev_loss"] and second["history"] == first["history"]
    weights = "model.safetensors" if method == "fmt" else "adapter_model.safetensors"
    assert (tmp_path / "straight" / "checkpoint" / weights).read_bytes() == (
        tmp_path / "killed" / "checkpoint" / weights
    ).read_bytes()


def test_killed_pretraining_resumes_to_identical_result(base, tmp_path):
    assert run(PRETRAIN, [base, tmp_path / "straight", tmp_path / "straight.pt"]).returncode == 0
    # Killed at step 8 of 16, between two log lines (every 3 steps): the running loss resumes too.
    killed_then_resumed(
        PRETRAIN,
        [base, tmp_path / "killed", tmp_path / "killed.pt"],
        tmp_path / "killed.pt",
        tmp_path / "killed" / "pretrain.json",
        8,
    )
    first = json.loads((tmp_path / "straight" / "pretrain.json").read_text())
    second = json.loads((tmp_path / "killed" / "pretrain.json").read_text())
    assert second["steps"] == first["steps"] == 16
    assert second["history"] == first["history"] and second["val_loss"] == first["val_loss"]
    assert (tmp_path / "straight" / "model.safetensors").read_bytes() == (
        tmp_path / "killed" / "model.safetensors"
    ).read_bytes()
