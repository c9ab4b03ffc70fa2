"""Finetuning: full model (FMT), prompt tuning and LoRA (both via peft), one loop for all three.

An example is one sequence `<s> source <sep> target </s>`; the loss is the log-likelihood of the
target tokens (and </s>) only. Adafactor, cosine schedule over the step/epoch cap, dev loss every
`eval_every` steps, early stopping after `patience` evaluations without a better dev loss; the
trainable weights with the best dev loss are the ones saved. A batch may be computed in
micro-batches (gradient accumulation) with the same loss and gradients.

Speed without changing the science (bench/bench_speed.py; tests/unit/test_fast_path.py): examples
are encoded once per job; a batch (random, as ever) is packed into rows with no padding between
examples, each attending only within itself (and its soft prompt); the vocabulary-sized LM
head runs on target positions only; evaluation runs under inference_mode, batched by length.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ftscale.data.tokens import OWN_FORMAT, PAD_ID, PromptFormat, TaskSplit
from ftscale.runtime import faults, integrity
from ftscale.train import distributed, training
from ftscale.train.model import (
    autocast,
    base_format,
    count_parameters,
    decoder_layers,
    device,
    empty_model,
    load_model,
    model_device,
    packs,
)

IGNORE = -100
# Every linear layer but the LM head, in any architecture (peft's `all-linear`): in ftscale's own
# models the attention and feed-forward projections, as the paper.
LORA_TARGETS = "all-linear"


def attach_method(model, method: str, pet_size: int | None, seed: int):
    """Wrap the base model so that exactly the method's parameters train."""
    if method == "fmt":
        return model
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

    torch.manual_seed(seed)  # the soft prompt's sampled vocabulary tokens / LoRA's A init
    if method == "prompt":
        # Initialised from the embeddings of tokens sampled from the vocabulary, as the paper.
        peft_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=pet_size, prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB
        )
    elif method == "lora":
        # Attention and feed-forward projections (LORA_TARGETS), as the paper; alpha = rank keeps the scale 1.
        peft_config = LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=pet_size, lora_alpha=pet_size, lora_dropout=0.0, target_modules=LORA_TARGETS
        )
    else:
        raise ValueError(f"unknown finetuning method {method!r}")
    return get_peft_model(model, peft_config)


def encode(source: np.ndarray, target: np.ndarray, fmt: PromptFormat = OWN_FORMAT) -> tuple[np.ndarray, int]:
    """One example as the sequence `<s> source <sep> target </s>` (in the tokenizer's format) and
    its prompt length (where the labelled target starts)."""
    ids = np.concatenate((fmt.bos, source, fmt.sep, target, [fmt.eos])).astype(np.int64)
    return ids, len(fmt.bos) + len(source) + len(fmt.sep)


def encode_split(
    split: TaskSplit, indices, max_source: int, max_target: int, fmt: PromptFormat = OWN_FORMAT
) -> list[tuple[np.ndarray, int]]:
    """The examples at `indices`, encoded once (a job trains on them for many steps)."""
    return [encode(*split.example(int(i), max_source, max_target), fmt) for i in indices]


# The padded path, for architectures that do not honour per-example position ids (model.packs);
# also the plain layout the packed rows are checked against (tests/padded_batches.py).
# The id that fills a training batch where it is masked out and unlabelled: never read, so any id
# of the vocabulary does (0 is in every one). The tokenizer's pad token matters in decoding only.
def pad(sequences: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are IGNORE except on target tokens and the closing </s>."""
    length = max(len(ids) for ids, _ in sequences)
    input_ids = np.full((len(sequences), length), PAD_ID, dtype=np.int64)
    labels = np.full((len(sequences), length), IGNORE, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, (ids, prompt) in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
        labels[row, prompt : len(ids)] = ids[prompt:]
        attention_mask[row, : len(ids)] = 1
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "labels": torch.from_numpy(labels),
    }


def pack(sequences: list[tuple[np.ndarray, int]], prefix: int = 0) -> dict[str, torch.Tensor]:
    """The same examples packed into as few rows as fit, no padding between them: rows as long as the
    longest example, filled first-fit by decreasing length. Position ids restart at 0 for each example,
    and with no attention mask transformers then lets each token attend only within its own example
    (its packed-sequence masking), so every example is computed exactly as if alone.

    prefix: slots reserved before each example for prompt tuning's soft prompt (marked `virtual`)."""
    span = [prefix + len(ids) for ids, _ in sequences]
    capacity = max(span)
    rows, space = [], []  # example numbers per row, room left per row
    for i in sorted(range(len(sequences)), key=lambda i: -span[i]):
        row = next((r for r, room in enumerate(space) if room >= span[i]), len(rows))
        if row == len(rows):
            rows.append([])
            space.append(capacity)
        rows[row].append(i)
        space[row] -= span[i]
    input_ids = np.full((len(rows), capacity), PAD_ID, dtype=np.int64)
    labels = np.full((len(rows), capacity), IGNORE, dtype=np.int64)
    position_ids = np.zeros((len(rows), capacity), dtype=np.int64)
    virtual = np.zeros((len(rows), capacity), dtype=bool)
    for row, members in enumerate(rows):
        at = 0
        for i in members:
            ids, prompt = sequences[i]
            virtual[row, at : at + prefix] = True
            input_ids[row, at + prefix : at + span[i]] = ids
            labels[row, at + prefix + prompt : at + span[i]] = ids[prompt:]
            position_ids[row, at : at + span[i]] = np.arange(span[i])
            at += span[i]
        position_ids[row, at:] = np.arange(capacity - at)  # trailing padding: a sequence of its own
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(position_ids),
        "labels": torch.from_numpy(labels),
    }
    return batch | ({"virtual": torch.from_numpy(virtual)} if prefix else {})


def is_prompt_tuned(model) -> bool:
    return hasattr(model, "peft_config") and model.active_peft_config.is_prompt_learning


def soft_prompt_length(model) -> int:
    """Virtual tokens a prompt-tuned model puts before each example; 0 for FMT and LoRA."""
    return model.active_peft_config.num_virtual_tokens if is_prompt_tuned(model) else 0


def soft_prompt(model) -> torch.Tensor:
    """A prompt-tuned model's soft prompt, (P, model dim), in its base model's dtype."""
    return model.get_prompt(batch_size=1)[0].to(causal_lm_of(model).dtype)


def causal_lm_of(model):
    """The causal LM inside: a peft model's base (LoRA's adapters live in its layers), or FMT's model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def make_batch(model, sequences: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """Packed rows on the model's device where the architecture honours packing, else padded
    rows; prompt tuning reserves its soft prompt's slots before each packed example."""
    batch = pack(sequences, soft_prompt_length(model)) if packs(causal_lm_of(model)) else pad(sequences)
    device = model_device(model)
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def hidden_states(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The decoder's final (normed) hidden states at the batch's positions, without the LM head.

    Works for the three methods: FMT is the causal LM; LoRA's adapters live inside its layers;
    prompt tuning puts the soft prompt before each example's embeddings, as peft's forward does:
    in a packed batch into the `virtual` slots (positions 0..P-1 of each example), in a padded one
    prepended to the row with an all-ones mask and default positions (its positions dropped here)."""
    causal_lm = causal_lm_of(model)
    input_ids, position_ids = batch["input_ids"], batch.get("position_ids")
    if not is_prompt_tuned(model):
        return causal_lm.base_model(
            input_ids=input_ids, attention_mask=batch.get("attention_mask"), position_ids=position_ids, use_cache=False
        ).last_hidden_state
    prompt = soft_prompt(model)
    embeds = causal_lm.get_input_embeddings()(input_ids)
    if "virtual" in batch:
        slots = prompt[position_ids.clamp(max=len(prompt) - 1)]
        embeds = torch.where(batch["virtual"][..., None], slots, embeds)
        return causal_lm.base_model(inputs_embeds=embeds, position_ids=position_ids, use_cache=False).last_hidden_state
    embeds = torch.cat((prompt.expand(len(input_ids), -1, -1), embeds), dim=1)
    mask = batch["attention_mask"]
    mask = torch.cat((mask.new_ones(len(input_ids), len(prompt)), mask), dim=1)
    return causal_lm.base_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state[
        :, len(prompt) :
    ]


def target_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood of the labelled (target) tokens, and their count, of a padded
    (input_ids, attention_mask, labels; tests/padded_batches.py builds them) or packed (pack) batch.

    The LM head (vocabulary-sized logits) runs on the target positions only: the source tokens,
    most of a summarization example, never pay for it. tests/unit/test_fast_path.py checks that
    this equals the loss from the model's full logits, example by example."""
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE  # position t predicts token t + 1
    with autocast(model):
        # a sharded model has it as a registered forward method (distributed.shard): FSDP2 then
        # gathers the root's parameters (embeddings, tied LM head, final norm, soft prompt) for it
        forward = getattr(model, "target_logits", None) or functools.partial(target_logits, model)
        logits = forward(batch, keep)
    return F.cross_entropy(logits.float(), labels[keep], reduction="sum"), keep.sum()


def target_logits(model, batch: dict[str, torch.Tensor], keep: torch.Tensor) -> torch.Tensor:
    """The LM head on the decoder's hidden states at the `keep` positions (those predicting a target)."""
    hidden = hidden_states(model, batch)
    return causal_lm_of(model).get_output_embeddings()(hidden[:, :-1][keep])


def sequences_loss(model, sequences: list[tuple[np.ndarray, int]], batch_size: int) -> float:
    """Token-level mean target loss over encoded examples (sorted by length, packed batches)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
    total, count = torch.zeros((), dtype=torch.float64, device=model_device(model)), 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            nll, n = target_nll(model, make_batch(model, [sequences[i] for i in order[start : start + batch_size]]))
            total, count = total + nll.double(), count + int(n)
    model.train(was_training)
    return total.item() / max(count, 1)


def split_loss(
    model, split: TaskSplit, indices, batch_size: int, max_source: int, max_target: int, fmt: PromptFormat = OWN_FORMAT
) -> float:
    """Token-level mean target loss over examples of a split."""
    return sequences_loss(model, encode_split(split, indices, max_source, max_target, fmt), batch_size)


# Length bucketing is off by default (bucket_batches 1): it changes which examples share a batch, and at equal steps
# that changed the dev loss measurably (toy summarization, FMT, 64 steps: +0.07 nats with 4 or 16
# batches per bucket, seed noise 0.005; bench/bench_speed.py). Packing (above) saves the padding
# without changing batches.


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket_batches: int = 1
) -> list[np.ndarray]:
    """One epoch's batches (positions into the training examples), a pure function of (seed, epoch),
    so that the batch at step k is the same after a resume.

    The epoch's random permutation cut into batches. With bucket_batches > 1, length-bucketed: the
    permutation is cut into chunks of `bucket_batches` batches; each chunk is sorted by length and cut
    into batches (examples of similar length pad little), visited in random order."""
    order = np.random.default_rng(training.derive_seed(seed, "epoch", epoch)).permutation(len(lengths))
    rng = np.random.default_rng(training.derive_seed(seed, "buckets", epoch))
    batches = []
    for start in range(0, len(order), bucket_batches * batch_size):
        chunk = order[start : start + bucket_batches * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        group = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        batches += [group[j] for j in rng.permutation(len(group))]
    return batches


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
    take[np.argsort(-(quotas - take), kind="stable")[: size - take.sum()]] += 1  # largest remainders
    # Per language, a prefix of one permutation: for a seed, larger subsets contain smaller ones.
    order = [rng.permutation(np.flatnonzero(split.lang == lang)) for lang in languages]
    chosen = np.concatenate([perm[:n] for perm, n in zip(order, take)])
    return np.sort(chosen)


def accumulate_gradients(
    model,
    batch: list[tuple[np.ndarray, int]],
    micro_batch_size: int | None,
    world: distributed.World = distributed.World(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one optimizer step's batch, in micro-batches (each packed on its own;
    with several ranks, of this rank's share of the batch).

    The gradients (and the loss returned) are those of the whole batch's token-level mean target
    loss: each micro-batch's summed NLL is divided by the WHOLE batch's target-token count, so the
    micro-batches (of all ranks) add up to the full batch's mean, not to a mean of per-micro-batch
    means (tests/unit/test_accumulation.py). Returns the loss (detached; this rank's part of it,
    world.total adds the ranks' parts) and that count."""
    count = torch.tensor(sum(len(ids) - prompt for ids, prompt in batch), device=model_device(model))
    loss = 0
    micros = training.rank_micro_batches(batch, micro_batch_size, world)
    for index, micro in enumerate(micros):
        distributed.sync_gradients(model, last=index == len(micros) - 1)
        nll, _ = target_nll(model, make_batch(model, micro))
        micro_loss = nll / count
        micro_loss.backward()
        loss = loss + micro_loss.detach()
    return loss, count


def model_to_train(
    base_dir: Path,
    method: str,
    pet_size: int | None,
    seed: int,
    world: distributed.World,
    activation_checkpointing: bool = False,
    param_dtype: torch.dtype | None = None,
):
    """The base model with the method attached, on its device, exactly the method's parameters
    trainable. Several ranks: sharded (ftscale.train.distributed.shard), built on the meta device,
    the weights loaded on rank 0's host only and broadcast; param_dtype: shard's."""
    source = None
    if world.size == 1:
        model = attach_method(load_model(base_dir), method, pet_size, seed).to(device())
    else:
        model = attach_method(empty_model(base_dir), method, pet_size, seed)
        if world.main:  # built last: rank 0's random generator left as one process leaves it
            source = attach_method(load_model(base_dir), method, pet_size, seed)
    if method == "fmt":
        model.requires_grad_(True)
    if activation_checkpointing:
        training.checkpoint_activations(causal_lm_of(model))
    # The packing probe runs the decoder: before sharding (not outside FSDP's forward), on weights
    # (rank 0's source where the model is on the meta device).
    probed = packs(causal_lm_of(model if source is None else source)) if world.main else False
    packs(causal_lm_of(model), world.from_main(probed))
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
) -> dict:
    """Train until dev loss has not improved for `patience` evaluations (None: never stop early), or the
    step or epoch cap; save the weights of the best dev loss. train.json records why it stopped
    (stop_reason: patience, max_steps, max_epochs or diverged) and the best checkpoint's step.

    batch_size: examples per optimizer step, computed in passes of micro_batch_size examples (None:
    one pass) with the same loss and gradients. activation_checkpointing: recompute activations in
    the backward pass (less memory). segment_seconds: after this much training, save the resume state
    and raise training.SegmentEnd (needs resume_path); the next call continues from it.
    Under torchrun with several ranks (ftscale.runtime.ranks), the model is sharded (FSDP2) and each rank
    computes its share of every batch (ftscale.train.distributed); rank 0 writes the outputs."""
    world = distributed.start()
    log = training.Log(log_name, quiet=not world.main)
    training.set_threads(threads)
    training.check_segment_args(segment_seconds, resume_path)
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
    model = model_to_train(base_dir, method, pet_size, seed, world, activation_checkpointing)
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

    # evals_since_best: evaluations since the dev loss last improved, the patience counter
    step, history, best, evals_since_best = 0, [], {"dev_loss": math.inf, "step": 0, "weights": snapshot()}, 0
    state = training.load_resume_state(resume_path, model, optimizer, world, strict=False)
    if state:
        step, history, best, evals_since_best = (
            state["step"],
            state["history"],
            state["best"],
            state["evals_since_best"],
        )
        log(f"resumed from {resume_path} at step {step}")
    log(
        f"{method} (size {pet_size}): {count_parameters(model, trainable_only=True):,} trainable parameters, "
        f"{len(examples)} examples, at most {total_steps} steps, patience {patience}"
    )

    def save_state():
        training.save_resume_state(
            resume_path,
            model,
            optimizer,
            {"step": step, "history": history, "best": best, "evals_since_best": evals_since_best},
            world,
        )

    status, stop_reason, started, first_step_at = "ok", cap_reason, time.perf_counter(), time.time()
    target_tokens = torch.zeros((), dtype=torch.long, device=model_device(model))  # trained on, for throughput figures
    batches, batches_epoch = [], None
    model.train()
    while step < total_steps:
        epoch, position = divmod(step, steps_per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(lengths, batch_size, seed, epoch, bucket_batches), epoch
        training.set_lr(
            optimizer,
            training.cosine_lr(step, total_steps, learning_rate, learning_rate / lr_min_divisor, warmup_steps),
        )
        loss, count = accumulate_gradients(model, [examples[i] for i in batches[position]], micro_batch_size, world)
        loss = world.total(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        target_tokens += count
        step += 1
        if step % eval_every == 0 or step == total_steps:
            train_loss = loss.item()
            dev_loss = sequences_loss(model, dev_examples, dev_batch_size)
            history.append({"step": step, "train_loss": train_loss, "dev_loss": dev_loss})
            log(f"step {step}/{total_steps} train {train_loss:.4f} dev {dev_loss:.4f}")
            if not (np.isfinite(train_loss) and np.isfinite(dev_loss)):
                status = stop_reason = "diverged"
                log("loss is not finite: recorded as diverged")
                break
            if dev_loss < best["dev_loss"]:
                best, evals_since_best = {"dev_loss": dev_loss, "step": step, "weights": snapshot()}, 0
            else:
                evals_since_best += 1
            if patience is not None and evals_since_best >= patience:
                stop_reason = "patience"
                log(f"no better dev loss for {patience} evaluations: stopping (best at step {best['step']})")
                break
            if resume_path and step < total_steps:
                save_state()
        if step < total_steps and world.agree(training.segment_over(started, segment_seconds, step)):
            save_state()
            raise training.SegmentEnd(step)

    with torch.no_grad():  # keep the checkpoint with the best dev loss
        params = dict(model.named_parameters())
        for name in trainable_names:
            distributed.local(params[name]).copy_(best["weights"][name])
    # rank 0: an unsharded copy (the base model with the method attached, the trained weights in)
    plain = distributed.unsharded(model, world, lambda: attach_method(load_model(base_dir), method, pet_size, seed))
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
        plain.save_pretrained(str(out_dir / "checkpoint"))
        integrity.seal(out_dir / "checkpoint")
        (out_dir / "train.json").write_text(json.dumps(summary, indent=1))
    training.remove_resume_state(resume_path, world)
    return summary


def load_finetuned(base_dir: Path, checkpoint: Path, method: str):
    """The model as evaluated: FMT checkpoints are whole models, PET ones are peft adapters."""
    if method == "fmt":
        return load_model(checkpoint)
    from peft import PeftModel

    integrity.check(checkpoint)
    return PeftModel.from_pretrained(load_model(base_dir), str(checkpoint))
