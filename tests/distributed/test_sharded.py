"""Sharded training (FSDP2) on 2 CPU ranks (gloo), launched as a job is (ftscale.runtime.ranks: torchrun):
the same per-step losses as one process, a run killed right after saving its sharded state
(torch.distributed.checkpoint) resumes to the same result, and the final checkpoints load with
transformers and peft as they are.

Tolerances: a 2-rank step adds the two halves' gradients in another order than one process does,
so float32 results agree to rounding, not bitwise: losses within 1e-5 relative, weights within 1e-5
absolute (measured: below 1e-6 on both; README "Sharded jobs"; under SGD, tests/distributed/test_fsdp.py:
losses within 1.1e-7 relative, weights within 6e-8). Two runs of the same 2 ranks are
bitwise equal, so the resumed run is compared exactly."""

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ftscale.runtime import tracking
from ftscale.train import finetune, pretrain
from tests import tiny_base
from tests.workflow.conftest import ROOT

pytestmark = pytest.mark.distributed
RTOL, ATOL = 1e-5, 1e-5
TIMING = ("train_seconds", "loop_seconds", "first_step_at", "target_tokens")  # of the last process only


def pretrain_args(base, out, **extra):  # noqa: F811
    return (
        tiny_base.pretrain_args(base / "stream" / "tokens.npy", out, log_every=1, checkpoint_every=5, log_name="test")
        | extra
    )


def finetune_args(base, out, method, pet, **extra):  # noqa: F811
    changed = dict(method=method, pet_size=pet, learning_rate=1e-2, max_steps=8, seed=3)
    return tiny_base.finetune_args(base, out, **changed) | extra


LAUNCH = """
import pickle, sys
from ftscale.runtime import ranks
target, kwargs = pickle.loads(bytes.fromhex(sys.argv[1]))
ranks.run(target, ranks.Layout(per_node=2), **kwargs)
"""


def two_ranks(
    target: str, kwargs: dict, kill_after_step: int | None = None, launch: str = LAUNCH, env_extra: dict | None = None
):
    """The job as 2 CPU ranks under torchrun, launched in a fresh process of its own session (the
    fault point kills the job's process group, not pytest's)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FTSCALE_FAULT", "FTSCALE_RUN_PGID")}
    env |= {
        "FTSCALE_DEVICE": "cpu",
        "FTSCALE_WORKER": "0",  # ROOT: the ranks import tests.distributed.each
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if kill_after_step is not None:
        env["FTSCALE_FAULT"] = f"resume:{kill_after_step}"
    env |= env_extra or {}
    return subprocess.run(
        [sys.executable, "-c", launch, pickle.dumps((target, kwargs)).hex()],
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=600,
    )


def finished(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMING}


def weights(directory: Path) -> dict[str, np.ndarray]:
    name = "model.safetensors" if (directory / "model.safetensors").exists() else "adapter_model.safetensors"
    return load_file(directory / name)


def assert_close_weights(a: Path, b: Path):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_allclose(wa[name], wb[name], rtol=0, atol=ATOL, err_msg=name)


@pytest.fixture(scope="module")
def pretrained(base, tmp_path_factory):  # noqa: F811
    """One process and 2 ranks (the ranks in micro-batches of 2 windows: 2 passes each), each saving
    an intermediate checkpoint at 1024 tokens (step 4; pretrain.data_axis: checkpoints)."""
    root = tmp_path_factory.mktemp("pretrain")
    one = pretrain.pretrain(**pretrain_args(base, root / "one", checkpoints={1024: root / "one_at1024"}))
    finished(
        two_ranks(
            "ftscale.train.pretrain:pretrain",
            pretrain_args(
                base,
                root / "two",
                micro_batch_size=2,
                resume_path=root / "two.pt",
                checkpoints={1024: root / "two_at1024"},
                curves=tracking.CurvesSpec(run="pretrain/two", tensorboard=root / "tensorboard"),
            ),
        )
    )
    return root, one


def test_only_rank_0_writes_the_curves(pretrained):
    from tests.unit.test_tracking import f32, scalars

    root, _ = pretrained
    two = json.loads((root / "two" / "pretrain.json").read_text())
    assert len(list((root / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert scalars(root / "tensorboard")["loss/train"] == [(h["step"], f32(h["train_loss"])) for h in two["history"]]


def test_two_ranks_pretrain_with_the_losses_of_one_process(pretrained):
    root, one = pretrained
    two = json.loads((root / "two" / "pretrain.json").read_text())
    assert [h["step"] for h in two["history"]] == [h["step"] for h in one["history"]] == list(range(1, 17))
    np.testing.assert_allclose(
        [h["train_loss"] for h in two["history"]], [h["train_loss"] for h in one["history"]], rtol=RTOL
    )
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=RTOL)
    assert two["params"] == one["params"]
    assert_close_weights(root / "one", root / "two")
    assert_close_weights(root / "one_at1024", root / "two_at1024")
    at = [json.loads((root / f"{run}_at1024" / "pretrain.json").read_text()) for run in ("one", "two")]
    assert at[1]["steps"] == at[0]["steps"] == 4 and at[1]["val_loss"] == pytest.approx(at[0]["val_loss"], rel=RTOL)
    assert not (root / "two.pt").exists() and not (root / "two.shards").exists()  # removed once complete


def test_sharded_checkpoint_loads_with_transformers_as_it_is(pretrained):
    from transformers import AutoModelForCausalLM

    root, _ = pretrained
    config = json.loads((root / "two" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]  # not FSDP's wrapper class
    model = AutoModelForCausalLM.from_pretrained(root / "two")
    batch = torch.arange(3, 35)[None]
    assert torch.isfinite(model(input_ids=batch, labels=batch).loss)


def test_killed_two_rank_pretraining_resumes_to_the_same_result(pretrained, base, tmp_path):  # noqa: F811
    root, _ = pretrained
    args = pretrain_args(base, tmp_path / "out", micro_batch_size=2, resume_path=tmp_path / "state.pt")
    killed = two_ranks("ftscale.train.pretrain:pretrain", args, kill_after_step=10)
    assert killed.returncode != 0 and (tmp_path / "state.pt").exists() and not (tmp_path / "out").exists()
    assert [p.name for p in (tmp_path / "state.shards").iterdir()] == ["step10"]
    again = finished(two_ranks("ftscale.train.pretrain:pretrain", args))
    assert f"resumed from {tmp_path / 'state.pt'} at step 10" in again.stdout
    resumed = json.loads((tmp_path / "out" / "pretrain.json").read_text())
    uninterrupted = json.loads((root / "two" / "pretrain.json").read_text())
    assert without_timing(resumed) == without_timing(uninterrupted)
    assert {k: v.tobytes() for k, v in weights(tmp_path / "out").items()} == {
        k: v.tobytes() for k, v in weights(root / "two").items()
    }


METHODS = [("fmt", None), ("lora", 2), ("prompt", 4)]
# By hand for SIZE, vocabulary 300 (attention 2 x 8 = 16 wide, one key/value head of 8):
# fmt: embedding 300 x 16 = 4800 (tied), q 256 + k 128 + v 128 + o 256 + gate, up, down 3 x 512 +
#   two norms 32 = 2336, final norm 16: 7152; lora rank 2, 2 x (in + out) per projection: q 64, k 48,
#   v 48, o 64, gate, up, down 3 x 96: 512; prompt 4 x 16 = 64.
TRAINABLE = {"fmt": 7152, "lora": 512, "prompt": 64}


@pytest.fixture(scope="module")
def finetuned(base, tmp_path_factory):  # noqa: F811
    """Per method: one process, and 2 ranks (fmt in micro-batches of 1 example: 2 passes each); the
    three methods' 2-rank runs in one launch."""
    root = tmp_path_factory.mktemp("finetune")
    runs, sharded = {}, []
    for method, pet in METHODS:
        one = finetune.finetune(**finetune_args(base, root / method / "one", method, pet))
        extra = {"micro_batch_size": 1} if method == "fmt" else {}
        sharded.append(
            finetune_args(base, root / method / "two", method, pet, resume_path=root / method / "two.pt", **extra)
        )
        runs[method] = (root / method, one)
    finished(two_ranks("tests.distributed.each:finetune_each", {"runs": sharded}))
    return runs


@pytest.mark.parametrize("method, pet", METHODS)
def test_two_ranks_finetune_with_the_losses_of_one_process(finetuned, method, pet):
    root, one = finetuned[method]
    two = json.loads((root / "two" / "train.json").read_text())
    for key in ("train_loss", "dev_loss"):
        np.testing.assert_allclose([h[key] for h in two["history"]], [h[key] for h in one["history"]], rtol=RTOL)
    assert (two["steps"], two["best_step"], two["trainable_params"]) == (
        one["steps"],
        one["best_step"],
        one["trainable_params"],
    )
    assert (two["steps"], two["trainable_params"]) == (8, TRAINABLE[method])
    assert_close_weights(root / "one" / "checkpoint", root / "two" / "checkpoint")


@pytest.mark.parametrize("method, pet", METHODS)
def test_sharded_finetuned_checkpoint_loads_as_it_is(finetuned, base, method, pet):  # noqa: F811
    root, _ = finetuned[method]
    model = finetune.load_finetuned(base / "base", root / "two" / "checkpoint", method)  # transformers or peft
    examples = finetune.encode_split(finetune.TaskSplit(base / "task" / "dev"), range(4), 32, 32)
    loss = finetune.sequences_loss(model, examples, 4)
    reference = finetune.sequences_loss(
        finetune.load_finetuned(base / "base", root / "one" / "checkpoint", method), examples, 4
    )
    assert loss == pytest.approx(reference, rel=RTOL)


def test_killed_two_rank_finetuning_resumes_to_the_same_result(finetuned, base, tmp_path):  # noqa: F811
    root, _ = finetuned["fmt"]
    args = finetune_args(base, tmp_path / "out", "fmt", None, micro_batch_size=1, resume_path=tmp_path / "state.pt")
    killed = two_ranks("ftscale.train.finetune:finetune", args, kill_after_step=5)
    assert killed.returncode != 0 and (tmp_path / "state.pt").exists() and not (tmp_path / "out").exists()
    again = finished(two_ranks("ftscale.train.finetune:finetune", args))
    assert f"resumed from {tmp_path / 'state.pt'} at step 5" in again.stdout
    resumed = json.loads((tmp_path / "out" / "train.json").read_text())
    uninterrupted = json.loads((root / "two" / "train.json").read_text())
    assert without_timing(resumed) == without_timing(uninterrupted)
    assert {k: v.tobytes() for k, v in weights(tmp_path / "out" / "checkpoint").items()} == {
        k: v.tobytes() for k, v in weights(root / "two" / "checkpoint").items()
    }


def test_a_time_segment_of_two_ranks_ends_as_one_process_does(finetuned, base, tmp_path):  # noqa: F811
    """SegmentEnd in the ranks comes back to the launching script as SegmentEnd (its exit 75)."""
    args = finetune_args(base, tmp_path / "out", "lora", 2, resume_path=tmp_path / "state.pt", segment_seconds=1e-9)
    code = LAUNCH.replace(
        "ranks.run(target, ranks.Layout(per_node=2), **kwargs)",
        """from ftscale.runtime.jobs import SegmentEnd, end_segment
try:
    ranks.run(target, ranks.Layout(per_node=2), **kwargs)
except SegmentEnd as end:   # as scripts/finetune.py does
    end_segment(end)""",
    )
    result = two_ranks("ftscale.train.finetune:finetune", args, launch=code)
    assert result.returncode == 75, (result.stdout + result.stderr)[-3000:]
    assert "saved at step 1; resubmit to continue" in result.stdout
    assert (tmp_path / "state.pt").exists() and not (tmp_path / "out").exists()


def test_slurms_warning_to_every_process_of_a_one_node_step_ends_the_ranks_segment_and_spares_the_rest(base, tmp_path):  # noqa: F811
    """A multi-GPU job on one node gets --signal=USR1@margin (ranks.slurm_resources), which SLURM sends
    to every process of the jobstep's step: the job's Snakemake, which ignores it (rules/common.smk,
    in a job), and what it starts, which inherit that: the script and torchrun. The ranks catch it,
    save at the step it came and exit 75 through the script. Without the ignore, USR1 kills them."""
    args = finetune_args(base, tmp_path / "out", "lora", 2, resume_path=tmp_path / "state.pt", segment_seconds=1e9)
    code = LAUNCH.replace(
        "ranks.run(target, ranks.Layout(per_node=2), **kwargs)",
        """import os
from ftscale.runtime import jobs
from ftscale.runtime.jobs import SegmentEnd, end_segment
os.environ["FTSCALE_STEP_SESSION"] = str(os.getsid(0))  # the step: this session and its descendants
IGNORE
try:
    ranks.run(target, ranks.Layout(per_node=2), **kwargs)
except SegmentEnd as end:   # as scripts/finetune.py does
    end_segment(end)""",
    )
    fault = {"FTSCALE_FAULT": "usr1_step:2"}  # rank 0 signals the whole step after step 2
    ignored = two_ranks(
        "ftscale.train.finetune:finetune",
        args,
        launch=code.replace("IGNORE", "jobs.ignore_stop_signal()"),
        env_extra=fault,
    )
    assert ignored.returncode == 75, (ignored.stdout + ignored.stderr)[-3000:]
    assert "saved at step 2; resubmit to continue" in ignored.stdout
    assert (tmp_path / "state.pt").exists() and not (tmp_path / "out").exists()
    (tmp_path / "state.pt").unlink()
    killed = two_ranks("ftscale.train.finetune:finetune", args, launch=code.replace("IGNORE", ""), env_extra=fault)
    assert killed.returncode == -signal.SIGUSR1, (killed.stdout + killed.stderr)[-3000:]


def test_the_other_ranks_do_not_wait_in_a_collective_while_rank_0_writes_the_model(base, tmp_path):  # noqa: F811
    """Rank 0 (FTSCALE_FAULT=slow_final_save) writes its outputs only once rank 1 has exited, with a
    process-group timeout of 20 s: a rank 1 waiting for rank 0 in a collective (the old barrier
    before removing the resume state) times out and fails the job; one that has nothing left to wait
    for exits, and the job completes."""
    out = tmp_path / "two"
    result = two_ranks(
        "ftscale.train.pretrain:pretrain",
        pretrain_args(base, out, micro_batch_size=2, resume_path=tmp_path / "two.pt"),
        env_extra={"FTSCALE_FAULT": "slow_final_save", "FTSCALE_PG_TIMEOUT_SECONDS": "20"},
    )
    finished(result)
    assert (out / "pretrain.json").exists() and not (tmp_path / "two.pt").exists()


# What srun does for ftscale.runtime.ranks' step, on this one machine: start --ntasks copies of the
# command, each with its SLURM task variables (no SLURM daemon here; the live cluster's `multinode`
# tests run the real one).
FAKE_SRUN = """#!{python}
import os, subprocess, sys
args, options = sys.argv[1:], {{}}
while args[0].startswith("--"):
    key, _, value = args.pop(0)[2:].partition("=")
    options[key] = value
tasks, per_node = int(options["ntasks"]), int(options["ntasks-per-node"])
open(os.environ["FTSCALE_TEST_SRUN_ARGS"], "w").write(" ".join(sys.argv[1:]))
ranks = [subprocess.Popen(args, env={{**os.environ, "SLURM_PROCID": str(rank), "SLURM_NTASKS": str(tasks),
                                     "SLURM_LOCALID": str(rank % per_node), "SLURM_STEP_NODELIST": "localhost"}})
         for rank in range(tasks)]
sys.exit(max(rank.wait() for rank in ranks))
"""


def test_ranks_started_as_srun_tasks_train_as_torchruns_do(pretrained, base, tmp_path):  # noqa: F811
    """The multi-node launch (one srun task per rank, each taking its place from SLURM's variables and
    meeting rank 0 on the job id's port) gives the 2-rank torchrun result bitwise."""
    root, _ = pretrained
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN.format(python=sys.executable))
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho localhost\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    launch = LAUNCH.replace("ranks.Layout(per_node=2)", "ranks.Layout(per_node=1, nodes=2)")
    out = tmp_path / "two"
    finished(
        two_ranks(
            "ftscale.train.pretrain:pretrain",
            pretrain_args(
                base,
                out,
                micro_batch_size=2,
                resume_path=tmp_path / "two.pt",
                checkpoints={1024: tmp_path / "two_at1024"},
            ),
            launch=launch,
            env_extra={
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "SLURM_JOB_ID": "4242",
                "FTSCALE_TEST_SRUN_ARGS": str(tmp_path / "srun.args"),
            },
        )
    )
    assert (
        (tmp_path / "srun.args").read_text().startswith("--nodes=2 --ntasks=2 --ntasks-per-node=1 --kill-on-bad-exit=1")
    )
    assert without_timing(json.loads((out / "pretrain.json").read_text())) == without_timing(
        json.loads((root / "two" / "pretrain.json").read_text())
    )
    assert (out / "model.safetensors").read_bytes() == (root / "two" / "model.safetensors").read_bytes()


def test_two_ranks_with_packed_attention_and_a_token_budget_train_as_one_process(base, tmp_path):  # noqa: F811
    """finetune.attention packed, a token budget of 80 (examples of up to 67 tokens: one to three a
    pass, the ranks' pass counts evened out) and a bf16 checkpoint, on 2 ranks: the losses of one
    process with the defaults (SDPA's block mask, the whole batch in one pass)."""
    from tests.unit.test_bf16_weights import saved_dtypes

    one = finetune.finetune(**finetune_args(base, tmp_path / "one", "fmt", None))
    options = {"attention": "packed", "micro_batch_tokens": 80, "checkpoint_dtype": "bfloat16"}
    finished(
        two_ranks("ftscale.train.finetune:finetune", finetune_args(base, tmp_path / "two", "fmt", None, **options))
    )
    two = json.loads((tmp_path / "two" / "train.json").read_text())
    for key in ("train_loss", "dev_loss"):
        np.testing.assert_allclose([h[key] for h in two["history"]], [h[key] for h in one["history"]], rtol=RTOL)
    assert saved_dtypes(tmp_path / "two" / "checkpoint") == {"BF16"}
    assert saved_dtypes(tmp_path / "one" / "checkpoint") == {"F32"}
