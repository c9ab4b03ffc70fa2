"""Pretraining: causal LM over one pass of the first `tokens` tokens of a family's corpus.

The paper used a UL2-style objective; plain next-token prediction is our documented substitute.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ftscale.data.tokens import load_stream, save_hf_tokenizer
from ftscale.runtime import faults, integrity, tracking
from ftscale.train import distributed, training
from ftscale.train.model import autocast, count_parameters, device, model_device, new_model


def windows(stream: np.ndarray, start: int, count: int, seq_len: int) -> torch.Tensor:
    """`count` consecutive windows of seq_len tokens starting at token `start`."""
    chunk = np.asarray(stream[start : start + count * seq_len], dtype=np.int64)
    return torch.from_numpy(chunk.reshape(count, seq_len))


@torch.inference_mode()
def stream_loss(model, stream: np.ndarray, seq_len: int, batch_size: int, max_windows: int = 64) -> float:
    model.eval()
    n = min(max_windows, len(stream) // seq_len)
    total = 0.0
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        batch = windows(stream, start * seq_len, count, seq_len).to(model_device(model))
        with autocast(model):
            total += model(input_ids=batch, labels=batch, use_cache=False).loss.item() * count
    model.train()
    return total / n


def checkpoint_steps(checkpoints: dict[int, Path], tokens: int, tokens_per_step: int) -> dict[int, int]:
    """The step after which each checkpoint budget is saved -> its budget: as many steps as a
    separate run of that budget takes (budget // tokens per step)."""
    steps = {}
    for budget in sorted(checkpoints):
        if not tokens_per_step <= budget < tokens:
            raise ValueError(
                f"pretrain checkpoint at {budget} tokens: must be at least one batch "
                f"({tokens_per_step} tokens) and less than the run's {tokens} tokens"
            )
        if budget // tokens_per_step in steps:
            raise ValueError(
                f"pretrain checkpoints at {steps[budget // tokens_per_step]} and {budget} tokens "
                f"fall on the same step ({tokens_per_step} tokens a step)"
            )
        steps[budget // tokens_per_step] = budget
    return steps


def save_base_model(model, out_dir: Path, summary: dict, tokenizer_file: Path | None) -> None:
    """A base checkpoint: a save_pretrained directory with its pretrain.json. Written beside and
    renamed into place, so a kill mid-save leaves no half directory under its name."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(str(partial))
    if tokenizer_file:  # so that AutoTokenizer.from_pretrained(out_dir) works too
        save_hf_tokenizer(tokenizer_file, partial)
    (partial / "pretrain.json").write_text(json.dumps(summary, indent=1))
    integrity.seal(partial)  # relative names: the manifest holds after the rename
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)


def staging_root(resume_path: Path) -> Path:
    return resume_path.with_name(f"{resume_path.stem}.checkpoints")


def staging_dir(resume_path: Path | None, budget: int, out_dir: Path) -> Path:
    """Where a checkpoint is written mid-run: beside the resumable state when there is one (a
    resumed job finds the checkpoints its killed attempt saved; Snakemake clears a failed job's
    outputs), else its output directory."""
    return staging_root(resume_path) / f"{budget}tok" if resume_path else out_dir


def accumulate_gradients(
    model, batch: torch.Tensor, micro_batch_size: int | None, world: distributed.World = distributed.World()
) -> torch.Tensor:
    """Forward and backward of one optimizer step's windows, in micro-batches (of this rank's share,
    with several ranks); the gradients are those of the whole batch's mean next-token loss, whose
    part from these micro-batches is returned (detached; world.total adds the ranks' parts).

    Every window has seq_len - 1 predicted tokens, so the batch's mean is the micro-batches' means
    weighted by their share of the WHOLE batch's windows (a weight of exactly 1.0 for one pass: bitwise
    as before)."""
    loss = 0
    micros = training.rank_micro_batches(batch, micro_batch_size, world)
    for index, micro in enumerate(micros):
        distributed.sync_gradients(model, last=index == len(micros) - 1)
        with autocast(model):
            micro_loss = model(input_ids=micro, labels=micro, use_cache=False).loss  # no KV cache in training
        micro_loss = micro_loss * (len(micro) / len(batch))
        micro_loss.backward()
        loss = loss + micro_loss.detach()
    return loss


def model_to_train(
    size: dict,
    vocab_size: int,
    seq_len: int,
    seed: int,
    world: distributed.World,
    activation_checkpointing: bool = False,
    param_dtype: torch.dtype | None = None,
):
    """The new model a pretraining job trains, on its device. Several ranks: sharded
    (ftscale.train.distributed.shard), built on the meta device, its weights initialised on rank 0's
    host as one process initialises them and broadcast; param_dtype: shard's."""
    source = None
    if world.size == 1:
        model = new_model(size, vocab_size, seq_len, seed).to(device())
    else:
        with torch.device("meta"):
            model = new_model(size, vocab_size, seq_len, seed)
        if world.main:  # built last: rank 0's random generator left as one process leaves it
            source = new_model(size, vocab_size, seq_len, seed)
    if activation_checkpointing:
        training.checkpoint_activations(model)
    return distributed.shard(model, model.model.layers, world, source=source, param_dtype=param_dtype)


def pretrain(
    *,
    size: dict,
    vocab_size: int,
    train_tokens: Path,
    val_tokens: Path,
    tokens: int,
    seq_len: int,
    batch_size: int,
    lr_max: float,
    lr_min: float,
    warmup_steps: int,
    parameter_scaling: bool,
    seed: int,
    out_dir: Path,
    resume_path: Path | None = None,
    log_every: int,
    checkpoint_every: int,
    tokenizer_file: Path | None = None,
    log_name: str = "pretrain",
    threads: int = 1,
    checkpoints: dict[int, Path] | None = None,
    micro_batch_size: int | None = None,
    activation_checkpointing: bool = False,
    segment_seconds: float | None = None,
    val_windows: int,
    curves: tracking.CurvesSpec | None = None,
) -> dict:  # with log_every, checkpoint_every: config pretrain.* (no defaults here)
    """checkpoints (budget in tokens -> directory): base checkpoints saved when the run has seen each
    budget, under the run's own LR schedule (not annealed at the checkpoint).
    batch_size: windows per optimizer step, computed in passes of micro_batch_size windows (None: one
    pass; validation runs in passes of the same size) with the same loss and gradients.
    activation_checkpointing: recompute activations in the backward pass (less memory).
    segment_seconds: after this much training, save the resume state and raise training.SegmentEnd
    (needs resume_path); the next call continues from it. curves: where its training curves go
    (ftscale.runtime.tracking; None: nowhere).
    Under torchrun with several ranks (ftscale.runtime.ranks), the model is sharded (FSDP2) and each rank
    computes its share of every batch (ftscale.train.distributed); rank 0 writes the outputs."""
    world, log = training.start(log_name, threads, segment_seconds, resume_path)
    stream = load_stream(train_tokens)
    val_stream = load_stream(val_tokens)
    tokens_per_step = batch_size * seq_len
    total_steps = tokens // tokens_per_step
    if tokens > len(stream):
        raise ValueError(
            f"pretrain budget {tokens} tokens exceeds the corpus ({len(stream)} tokens): "
            f"raise data.pretrain_lines or lower pretrain.budgets"
        )
    if total_steps < 1:
        raise ValueError(f"pretrain budget {tokens} tokens is less than one batch ({tokens_per_step})")
    checkpoints = checkpoints or {}
    checkpoint_at = checkpoint_steps(checkpoints, tokens, tokens_per_step)

    training.seed_everything(seed)
    model = model_to_train(size, vocab_size, seq_len, seed, world, activation_checkpointing)
    optimizer = training.adafactor(model.parameters(), lr_max, parameter_scaling)
    distributed.init_adafactor_state(optimizer)
    # running: the summed loss of the steps since the last log line (their mean is logged)
    history, running = [], torch.zeros((), device=model_device(model))
    log(f"pretraining {count_parameters(model):,} parameters on {tokens:,} tokens: {total_steps} steps")
    curves = tracking.open_curves(curves, world.main)

    def backward(step):
        batch = windows(stream, step * tokens_per_step, batch_size, seq_len).to(model_device(model), non_blocking=True)
        running.add_(world.total(accumulate_gradients(model, batch, micro_batch_size, world)))
        curves.count(tokens_per_step)

    def saved_model():  # what save_pretrained writes: the model, or on rank 0 an unsharded copy (None elsewhere)
        return distributed.unsharded(model, world, lambda: new_model(size, vocab_size, seq_len, seed))

    def after(step, lr):
        if step in checkpoint_at:  # before the log below resets `running`: the loss since the last log line
            budget = checkpoint_at[step]
            summary = {
                "params": count_parameters(model),
                "pretrain_tokens": budget,
                "steps": step,
                "tokens_seen": step * tokens_per_step,
                "checkpoint_of": tokens,
                "lr": lr,
                "train_loss": running.item() / (step % log_every or log_every),
                "val_loss": stream_loss(model, val_stream, seq_len, micro_batch_size or batch_size, val_windows),
                "status": "ok",
                "train_seconds": time.perf_counter() - started,
                "history": list(history),
            }
            if (plain := saved_model()) is not None:
                save_base_model(plain, staging_dir(resume_path, budget, checkpoints[budget]), summary, tokenizer_file)
            log(f"checkpoint at {budget:,} tokens: val loss {summary['val_loss']:.4f}")
            curves.point(step, {"loss/val": summary["val_loss"]}, throughput=False)
        if step % log_every == 0 or step == total_steps:
            mean = running.item() / (log_every if step % log_every == 0 else step % log_every)
            running.zero_()
            history.append({"step": step, "train_loss": mean, "lr": lr})
            log(f"step {step}/{total_steps} loss {mean:.4f} lr {lr:.2e}")
            curves.point(step, {"loss/train": mean, "lr": lr})
            if not np.isfinite(mean):
                log("loss is not finite: recorded as diverged")
                return "diverged"
        return None

    def restore(state):
        history[:] = state["history"]
        running.copy_(state["running"])

    started = time.perf_counter()
    step, stop = training.run_loop(
        training.Steps(
            total=total_steps,
            backward=backward,
            after=after,
            lr=lambda step: training.cosine_lr(step, total_steps, lr_max, lr_min, warmup_steps),
            save_due=lambda step: step % checkpoint_every == 0,
            state=lambda: {"running": running, "history": history},
            restore=restore,
        ),
        model,
        optimizer,
        world,
        resume_path,
        segment_seconds,
        log,
        curves=curves,
    )
    diverged = stop == "diverged"
    loop_seconds = time.perf_counter() - started
    val_loss = (
        float("nan")
        if diverged
        else stream_loss(model, val_stream, seq_len, micro_batch_size or batch_size, val_windows)
    )
    summary = {
        "params": count_parameters(model),
        "pretrain_tokens": tokens,
        "steps": step,
        "train_loss": history[-1]["train_loss"] if history else float("nan"),
        "val_loss": val_loss,
        "status": "diverged" if diverged else "ok",
        "train_seconds": time.perf_counter() - started,
        "history": history,
        "loop_seconds": loop_seconds,  # the training steps run in this process, without validation and saving
    }
    log(f"done: val loss {val_loss:.4f}")
    curves.point(step, {"loss/val": val_loss}, throughput=False)
    plain = saved_model()
    if world.main:
        faults.wait_for_other_ranks("slow_final_save")  # tests: a save slower than the other ranks
        save_outputs(plain, out_dir, summary, tokenizer_file, checkpoints, checkpoint_at, step, resume_path)
    curves.close()
    training.remove_resume_state(resume_path, world)
    return summary


def save_outputs(
    model,
    out_dir: Path,
    summary: dict,
    tokenizer_file: Path | None,
    checkpoints: dict[int, Path],
    checkpoint_at: dict[int, int],
    step: int,
    resume_path: Path | None,
) -> None:
    """The run's base checkpoint, and its intermediate checkpoints moved from staging into place."""
    save_base_model(model, out_dir, summary, tokenizer_file)
    tokens = summary["pretrain_tokens"]
    for step_at, budget in checkpoint_at.items():
        staged = staging_dir(resume_path, budget, checkpoints[budget])
        if step_at > step:  # a diverged run never got there: its last weights, marked diverged
            save_base_model(
                model, staged, {**summary, "pretrain_tokens": budget, "checkpoint_of": tokens}, tokenizer_file
            )
        if staged != checkpoints[budget]:
            shutil.rmtree(checkpoints[budget], ignore_errors=True)
            checkpoints[budget].parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staged, checkpoints[budget])
    if resume_path:
        shutil.rmtree(staging_root(resume_path), ignore_errors=True)
