"""Finetuning: full model (FMT), prompt tuning and LoRA (both via peft), one loop for all three.

An example is one sequence `<s> source <sep> target </s>`; the loss is the log-likelihood of the
target tokens (and </s>) only. Adafactor, cosine schedule, a step cap and an epoch cap, dev loss
every `eval_every` steps; the trainable weights with the best dev loss are the ones saved.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ftscale import training
from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID, SEP_ID, TaskSplit
from ftscale.model import count_parameters, load_model

IGNORE = -100
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def attach_method(model, method: str, pet_size: int | None, seed: int):
    """Wrap the base model so that exactly the method's parameters train."""
    if method == "fmt":
        return model
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    torch.manual_seed(seed)   # the soft prompt's sampled vocabulary tokens / LoRA's A init
    if method == "prompt":
        # Initialised from the embeddings of tokens sampled from the vocabulary, as the paper.
        peft_config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=pet_size,
                                         prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB)
    elif method == "lora":
        # Attention and feed-forward projections, as the paper; alpha = rank keeps the scale 1.
        peft_config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=pet_size, lora_alpha=pet_size,
                                 lora_dropout=0.0, target_modules=LORA_TARGETS)
    else:
        raise ValueError(f"unknown finetuning method {method!r}")
    return get_peft_model(model, peft_config)


def collate(examples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are IGNORE except on target tokens and the closing </s>."""
    length = max(len(s) + len(t) + 3 for s, t in examples)
    input_ids = torch.full((len(examples), length), PAD_ID, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, (source, target) in enumerate(examples):
        ids = [BOS_ID, *source.tolist(), SEP_ID, *target.tolist(), EOS_ID]
        prompt = len(source) + 2
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, prompt:len(ids)] = input_ids[row, prompt:len(ids)]
        attention_mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def target_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood of the labelled (target) tokens, and their count."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    logits = logits[:, -labels.shape[1]:]       # prompt tuning prepends virtual-token positions
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                          labels[:, 1:].reshape(-1), ignore_index=IGNORE, reduction="sum")
    return nll, (labels[:, 1:] != IGNORE).sum()


@torch.no_grad()
def split_loss(model, split: TaskSplit, indices, batch_size: int, max_source: int, max_target: int) -> float:
    """Token-level mean target loss over examples of a split."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(indices), batch_size):
        batch = collate([split.example(i, max_source, max_target) for i in indices[start:start + batch_size]])
        nll, n = target_nll(model, batch)
        total, count = total + nll.item(), count + int(n)
    model.train(was_training)
    return total / max(count, 1)


def subset(split: TaskSplit, size: int, seed: int) -> np.ndarray:
    """`size` examples drawn at random, keeping the pool's language mix (stratified).

    For one seed, smaller subsets are prefixes of larger ones (nested), so the Df axis of a seed
    varies only the amount of data, not which examples."""
    if size > len(split):
        raise ValueError(f"finetune_examples {size} exceeds the training pool ({len(split)})")
    rng = np.random.default_rng(seed)
    languages, counts = np.unique(split.lang, return_counts=True)
    quotas = counts / counts.sum() * size
    take = np.floor(quotas).astype(int)
    take[np.argsort(-(quotas - take), kind="stable")[: size - take.sum()]] += 1   # largest remainders
    # Per language, a prefix of one permutation: for a seed, larger subsets contain smaller ones.
    order = [rng.permutation(np.flatnonzero(split.lang == lang)) for lang in languages]
    chosen = np.concatenate([perm[:n] for perm, n in zip(order, take)])
    return np.sort(chosen)


def finetune(*, base_dir: Path, method: str, pet_size: int | None, learning_rate: float,
             batch_size: int, parameter_scaling: bool, max_steps: int, max_epochs: int, eval_every: int, train_dir: Path,
             dev_dir: Path, finetune_examples: int, max_source: int, max_target: int, seed: int,
             out_dir: Path, resume_path: Path | None = None, log_name: str = "finetune", threads: int = 1) -> dict:
    log = training.Log(log_name)
    training.set_threads(threads)
    train, dev = TaskSplit(train_dir), TaskSplit(dev_dir)
    examples = subset(train, finetune_examples, seed)
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total_steps = min(max_steps, max_epochs * steps_per_epoch)
    dev_indices = np.arange(len(dev))

    training.seed_everything(seed)
    model = attach_method(load_model(base_dir), method, pet_size, seed)
    if method == "fmt":
        model.requires_grad_(True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = training.adafactor(trainable, learning_rate, parameter_scaling)
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]

    def snapshot():
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    step, history, best = 0, [], {"dev_loss": math.inf, "step": 0, "weights": snapshot()}
    state = training.load_resume_state(resume_path)
    if state:
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step, history, best = state["step"], state["history"], state["best"]
        log(f"resumed from {resume_path} at step {step}")
    log(f"{method} (size {pet_size}): {count_parameters(model, trainable_only=True):,} trainable parameters, "
        f"{len(examples)} examples, {total_steps} steps")

    status, started = "ok", time.perf_counter()
    model.train()
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        order = np.random.default_rng(training.derive_seed(seed, "epoch", epoch)).permutation(examples)
        batch_ids = order[position * batch_size:(position + 1) * batch_size]
        batch = collate([train.example(i, max_source, max_target) for i in batch_ids])
        training.set_lr(optimizer, training.cosine_lr(step, total_steps, learning_rate, learning_rate / 10))
        nll, count = target_nll(model, batch)
        loss = nll / count
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step % eval_every == 0 or step == total_steps:
            train_loss = loss.item()
            dev_loss = split_loss(model, dev, dev_indices, 64, max_source, max_target)
            history.append({"step": step, "train_loss": train_loss, "dev_loss": dev_loss})
            log(f"step {step}/{total_steps} train {train_loss:.4f} dev {dev_loss:.4f}")
            if not (np.isfinite(train_loss) and np.isfinite(dev_loss)):
                status = "diverged"
                log("loss is not finite: recorded as diverged")
                break
            if dev_loss < best["dev_loss"]:
                best = {"dev_loss": dev_loss, "step": step, "weights": snapshot()}
            if resume_path and step < total_steps:
                training.save_resume_state(resume_path, {"model": {n: p for n, p in model.state_dict().items()},
                                                         "optimizer": optimizer.state_dict(), "step": step,
                                                         "history": history, "best": best})

    with torch.no_grad():   # keep the checkpoint with the best dev loss
        params = dict(model.named_parameters())
        for name in trainable_names:
            params[name].copy_(best["weights"][name])
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir / "checkpoint"))
    summary = {
        "method": method, "pet_size": pet_size, "finetune_examples": finetune_examples, "seed": seed,
        "status": status, "steps": step, "best_step": best["step"],
        "dev_loss": best["dev_loss"] if math.isfinite(best["dev_loss"]) else None,
        "trainable_params": count_parameters(model, trainable_only=True),
        "train_seconds": time.perf_counter() - started, "history": history,
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=1))
    if resume_path and resume_path.exists():
        resume_path.unlink()
    return summary


def load_finetuned(base_dir: Path, checkpoint: Path, method: str):
    """The model as evaluated: FMT checkpoints are whole models, PET ones are peft adapters."""
    if method == "fmt":
        return load_model(checkpoint)
    from peft import PeftModel

    return PeftModel.from_pretrained(load_model(base_dir), str(checkpoint))
