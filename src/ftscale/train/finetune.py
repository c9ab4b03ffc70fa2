"""Finetuning: full model (FMT), prompt tuning and LoRA (both via peft), one loop for all three.

Adafactor, cosine schedule over the step/epoch cap, dev loss every `eval_every` steps, early
stopping after `patience` evaluations without a better dev loss; the trainable weights with the
best dev loss are the ones saved. The steps run in the loop pretraining shares (training.run_loop);
examples, batches and the loss are in ftscale.train.batches.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ftscale.config import method_option_defaults, schema_default
from ftscale.data.tokens import TaskSplit
from ftscale.runtime import faults, integrity, tracking
from ftscale.runtime.internals.transformers import decoder_layers
from ftscale.train import distributed, packed_attention, training

# re-exported: tests and benches know these as finetune.<name>
from ftscale.train.batches import (  # noqa: F401
    IGNORE,
    accumulate_gradients,
    causal_lm_of,
    encode,
    encode_split,
    epoch_batches,
    make_batch,
    pack,
    pad,
    sequences_loss,
    split_loss,
    subset,
    target_logits,
    target_nll,
)
from ftscale.train.model import (
    base_format,
    count_parameters,
    device,
    empty_model,
    load_model,
    model_device,
    packs,
    save_checkpoint,
)


def attach_method(model, method: str, pet_size: int | None, seed: int, options: dict | None = None):
    """Wrap the base model so that exactly the method's parameters train. options: the method's
    config keys (finetune.methods.<method>: LoRA's alpha_over_rank, dropout, target_modules; prompt
    tuning's init); those not given take the schema's defaults."""
    if method == "fmt":
        return model
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    options = method_option_defaults(method) | (options or {})
    torch.manual_seed(seed)  # the soft prompt's sampled vocabulary tokens / LoRA's A init
    if method == "prompt":
        peft_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=pet_size,
            prompt_tuning_init=PromptTuningInit[options["init"].upper()],
        )
    elif method == "lora":
        # peft scales the update BA by lora_alpha / r
        peft_config = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=pet_size,
            lora_alpha=options["alpha_over_rank"] * pet_size,
            lora_dropout=options["dropout"],
            target_modules=options["target_modules"],
        )
    else:
        raise ValueError(f"unknown finetuning method {method!r}")
    return get_peft_model(model, peft_config)


def model_to_train(
    base_dir: Path,
    method: str,
    pet_size: int | None,
    seed: int,
    world: distributed.World,
    activation_checkpointing: bool = False,
    param_dtype: torch.dtype | None = None,
    method_options: dict | None = None,
    attention: str | None = None,
):
    """The base model with the method attached, on its device, exactly the method's parameters
    trainable. Several ranks: sharded (ftscale.train.distributed.shard), built on the meta device,
    the weights loaded on rank 0's host only and broadcast; param_dtype: shard's. attention: the
    config's finetune.attention (None: the schema's default); `packed` where the model packs."""
    source = None
    if world.size == 1:
        model = attach_method(load_model(base_dir), method, pet_size, seed, method_options).to(device())
    else:
        model = attach_method(empty_model(base_dir), method, pet_size, seed, method_options)
        if world.main:  # built last: rank 0's random generator left as one process leaves it
            source = attach_method(load_model(base_dir), method, pet_size, seed, method_options)
    if method == "fmt":
        model.requires_grad_(True)
    if activation_checkpointing:
        training.checkpoint_activations(causal_lm_of(model))
    # The packing probes run the decoder: before sharding (not outside FSDP's forward), on weights
    # (rank 0's source where the model is on the meta device).
    probe = causal_lm_of(model if source is None else source)
    probed = packs(probe) if world.main else False
    wants_packed = (attention or schema_default("finetune", "attention")) == "packed"
    masked_free = world.main and probed and wants_packed and packed_attention.use(probe)
    packs(causal_lm_of(model), world.from_main(probed))
    if world.from_main(masked_free):
        packed_attention.use(causal_lm_of(model), probe=False)
    return distributed.shard(
        model,
        decoder_layers(causal_lm_of(model)),
        world,
        source=source,
        param_dtype=param_dtype,
        forward_methods={"target_logits": functools.partial(target_logits, model)},
    )


def finetune(
    *,
    base_dir: Path,
    method: str,
    pet_size: int | None,
    learning_rate: float,
    batch_size: int,
    parameter_scaling: bool,
    max_steps: int,
    max_epochs: int,
    eval_every: int,
    train_dir: Path,
    dev_dir: Path,
    finetune_examples: int,
    max_source: int,
    max_target: int,
    seed: int,
    out_dir: Path,
    resume_path: Path | None = None,
    log_name: str = "finetune",
    threads: int = 1,
    bucket_batches: int = 1,
    patience: int | None = None,
    micro_batch_size: int | None = None,
    activation_checkpointing: bool = False,
    segment_seconds: float | None = None,
    # the config's finetune.lr_min_divisor, warmup_steps, dev_batch_size (the schema says what each does)
    lr_min_divisor: float,
    warmup_steps: int,
    dev_batch_size: int,
    method_options: dict | None = None,
    # the config's finetune.attention and checkpoint_dtype (None: the schema's defaults), and the
    # plan's token budget (finetune.micro_batch_unit tokens; None: micro-batches of examples)
    attention: str | None = None,
    checkpoint_dtype: str | None = None,
    micro_batch_tokens: int | None = None,
    curves: tracking.CurvesSpec | None = None,
) -> dict:
    """Train until dev loss has not improved for `patience` evaluations (None: never stop early), or the
    step or epoch cap; save the weights of the best dev loss. train.json records why it stopped
    (stop_reason: patience, max_steps, max_epochs or diverged) and the best checkpoint's step.

    batch_size: examples per optimizer step, computed in passes of micro_batch_size examples (None:
    one pass) with the same loss and gradients. method_options: attach_method's options.
    activation_checkpointing: recompute activations in the backward pass (less memory).
    segment_seconds: after this much training, save the resume state and raise training.SegmentEnd
    (needs resume_path); the next call continues from it. curves: where its training curves go
    (ftscale.runtime.tracking; None: nowhere).
    Under torchrun with several ranks (ftscale.runtime.ranks), the model is sharded (FSDP2) and each rank
    computes its share of every batch (ftscale.train.distributed); rank 0 writes the outputs."""
    world, log = training.start(log_name, threads, segment_seconds, resume_path)
    if patience is not None and patience < 1:
        raise ValueError(f"finetune patience must be a positive number of evaluations, got {patience!r}")
    train, dev = TaskSplit(train_dir), TaskSplit(dev_dir)
    fmt = base_format(base_dir)
    examples = encode_split(train, subset(train, finetune_examples, seed), max_source, max_target, fmt)
    lengths = np.array([len(ids) for ids, _ in examples])
    dev_examples = encode_split(dev, range(len(dev)), max_source, max_target, fmt)
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    # The cap, also the cosine schedule's horizon: where patience will stop is not known in advance,
    # so the learning rate decays over the steps training may take at most.
    total_steps = min(max_steps, max_epochs * steps_per_epoch)
    cap_reason = "max_steps" if max_steps <= max_epochs * steps_per_epoch else "max_epochs"

    training.seed_everything(seed)
    model = model_to_train(
        base_dir,
        method,
        pet_size,
        seed,
        world,
        activation_checkpointing,
        method_options=method_options,
        attention=attention,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = training.adafactor(trainable, learning_rate, parameter_scaling)
    distributed.init_adafactor_state(optimizer)
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]

    def snapshot():  # on the host: a GPU keeps only the weights it trains (sharded: this rank's shards)
        return {
            n: distributed.local(p).detach().to("cpu", copy=True)
            for n, p in model.named_parameters()
            if p.requires_grad
        }

    # The resumable state. evals_since_best: evaluations since the dev loss last improved (patience).
    track = {"history": [], "best": {"dev_loss": math.inf, "step": 0, "weights": snapshot()}, "evals_since_best": 0}
    resumable = tuple(track)
    log(
        f"{method} (size {pet_size}): {count_parameters(model, trainable_only=True):,} trainable parameters, "
        f"{len(examples)} examples, at most {total_steps} steps, patience {patience}"
    )
    target_tokens = torch.zeros((), dtype=torch.long, device=model_device(model))  # trained on, for throughput figures
    curves = tracking.open_curves(curves, world.main)
    epoch_of = {}  # epoch -> its batches, the current epoch only

    def backward(step):
        epoch, position = divmod(step, steps_per_epoch)
        if epoch not in epoch_of:
            epoch_of.clear()
            epoch_of[epoch] = epoch_batches(lengths, batch_size, seed, epoch, bucket_batches)
        batch = [examples[i] for i in epoch_of[epoch][position]]
        loss, count = accumulate_gradients(model, batch, micro_batch_size, world, micro_batch_tokens)
        track["loss"] = world.total(loss)  # the step's loss, all ranks': read where it is evaluated
        target_tokens.add_(count)
        curves.count(count)

    def evaluate(step, lr):
        if not (step % eval_every == 0 or step == total_steps):
            return None
        train_loss = track.pop("loss").item()
        dev_loss = sequences_loss(model, dev_examples, dev_batch_size)
        track["history"].append({"step": step, "train_loss": train_loss, "dev_loss": dev_loss})
        log(f"step {step}/{total_steps} train {train_loss:.4f} dev {dev_loss:.4f}")
        curves.point(step, {"loss/train": train_loss, "loss/dev": dev_loss, "lr": lr})
        if not (np.isfinite(train_loss) and np.isfinite(dev_loss)):
            log("loss is not finite: recorded as diverged")
            return "diverged"
        if dev_loss < track["best"]["dev_loss"]:
            track["best"], track["evals_since_best"] = {"dev_loss": dev_loss, "step": step, "weights": snapshot()}, 0
        else:
            track["evals_since_best"] += 1
        if patience is not None and track["evals_since_best"] >= patience:
            log(f"no better dev loss for {patience} evaluations: stopping (best at step {track['best']['step']})")
            return "patience"
        return None

    started, first_step_at = time.perf_counter(), time.time()
    lr_min = learning_rate / lr_min_divisor
    step, stop = training.run_loop(
        training.Steps(
            total=total_steps,
            backward=backward,
            after=evaluate,
            lr=lambda step: training.cosine_lr(step, total_steps, learning_rate, lr_min, warmup_steps),
            save_due=lambda step: step % eval_every == 0 or step == total_steps,
            state=lambda: {k: track[k] for k in resumable},
            restore=lambda state: track.update({k: state[k] for k in resumable}),
        ),
        model,
        optimizer,
        world,
        resume_path,
        segment_seconds,
        log,
        strict=False,
        curves=curves,
    )
    status, stop_reason = ("diverged" if stop == "diverged" else "ok"), stop or cap_reason
    history, best = track["history"], track["best"]

    with torch.no_grad():  # keep the checkpoint with the best dev loss
        params = dict(model.named_parameters())
        for name in trainable_names:
            distributed.local(params[name]).copy_(best["weights"][name])
    # rank 0: an unsharded copy (the base model with the method attached, the trained weights in)
    plain = distributed.unsharded(
        model, world, lambda: attach_method(load_model(base_dir), method, pet_size, seed, method_options)
    )
    summary = {
        "method": method,
        "pet_size": pet_size,
        "finetune_examples": finetune_examples,
        "seed": seed,
        "status": status,
        "stop_reason": stop_reason,
        "steps": step,
        "best_step": best["step"],
        "dev_loss": best["dev_loss"] if math.isfinite(best["dev_loss"]) else None,
        "trainable_params": count_parameters(model, trainable_only=True),
        "train_seconds": time.perf_counter() - started,
        "history": history,
        # throughput figures (bench/bench_speed.py): target tokens of the steps run in this process,
        # and the wall-clock time its first step began
        "target_tokens": int(target_tokens),
        "first_step_at": first_step_at,
    }
    if world.main:
        faults.wait_for_other_ranks("slow_final_save")  # tests: a save slower than the other ranks
        out_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            plain, out_dir / "checkpoint", checkpoint_dtype or schema_default("finetune", "checkpoint_dtype")
        )
        (out_dir / "train.json").write_text(json.dumps(summary, indent=1))
    curves.close()
    training.remove_resume_state(resume_path, world)
    return summary


def load_finetuned(base_dir: Path, checkpoint: Path, method: str, dtype: str = "float32"):
    """The model as evaluated: FMT checkpoints are whole models, PET ones are peft adapters; every
    weight in `dtype` (the config's evaluate.weights_dtype), adapters included (peft would upcast
    bf16 adapters to fp32)."""
    if method == "fmt":
        return load_model(checkpoint, dtype)
    from peft import PeftModel

    integrity.check(checkpoint)
    model = PeftModel.from_pretrained(load_model(base_dir, dtype), str(checkpoint), autocast_adapter_dtype=False)
    return model.to(getattr(torch, dtype))
