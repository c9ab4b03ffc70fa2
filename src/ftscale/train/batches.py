"""Finetuning examples, batches and the loss, for all three methods (FMT, prompt tuning, LoRA).

An example is one sequence `<s> source <sep> target </s>`; the loss is the log-likelihood of the
target tokens (and </s>) only. A batch may be computed in micro-batches (gradient accumulation)
with the same loss and gradients.

Speed without changing the science (bench/bench_speed.py; tests/unit/test_fast_path.py): examples
are encoded once per job; a batch (random, as ever) is packed into rows with no padding between
examples, each attending only within itself (and its soft prompt); the vocabulary-sized LM
head runs on target positions only; evaluation runs under inference_mode, batched by length.
(Past 300 lines: packing, the loss over packed rows and the micro-batches cut from them are one
computation, checked together by tests/unit/test_fast_path.py and test_token_micro_batches.py.)
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ftscale.data.tokens import OWN_FORMAT, PAD_ID, PromptFormat, TaskSplit
from ftscale.train import distributed, packed_attention, training
from ftscale.train.model import autocast, model_device, packs

IGNORE = -100


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


def pack_rows(span: list[int]) -> list[list[int]]:
    """The examples (by number) of each packed row: rows as long as the longest span, filled first-fit
    by decreasing length."""
    capacity = max(span)
    rows, space = [], []  # example numbers per row, room left per row
    for i in sorted(range(len(span)), key=lambda i: -span[i]):
        row = next((r for r, room in enumerate(space) if room >= span[i]), len(rows))
        if row == len(rows):
            rows.append([])
            space.append(capacity)
        rows[row].append(i)
        space[row] -= span[i]
    return rows


def packed_tokens(span: list[int]) -> int:
    """Tokens of pack's rows for examples of these spans, padding included: rows x the longest."""
    return len(pack_rows(span)) * max(span)


def pack(sequences: list[tuple[np.ndarray, int]], prefix: int = 0) -> dict[str, torch.Tensor]:
    """The same examples packed into as few rows as fit, no padding between them: rows as long as the
    longest example, filled first-fit by decreasing length. Position ids restart at 0 for each example,
    and with no attention mask transformers then lets each token attend only within its own example
    (its packed-sequence masking), so every example is computed exactly as if alone.

    prefix: slots reserved before each example for prompt tuning's soft prompt (marked `virtual`).
    cu_seq_lens, max_length: where each example (and each row's trailing padding) starts in the
    flattened rows, and the longest: what attention without a mask needs (ftscale.train.packed_attention)."""
    span = [prefix + len(ids) for ids, _ in sequences]
    capacity = max(span)
    rows = pack_rows(span)
    input_ids = np.full((len(rows), capacity), PAD_ID, dtype=np.int64)
    labels = np.full((len(rows), capacity), IGNORE, dtype=np.int64)
    position_ids = np.zeros((len(rows), capacity), dtype=np.int64)
    virtual = np.zeros((len(rows), capacity), dtype=bool)
    starts = []
    for row, members in enumerate(rows):
        at = 0
        for i in members:
            starts.append(row * capacity + at)
            ids, prompt = sequences[i]
            virtual[row, at : at + prefix] = True
            input_ids[row, at + prefix : at + span[i]] = ids
            labels[row, at + prefix + prompt : at + span[i]] = ids[prompt:]
            position_ids[row, at : at + span[i]] = np.arange(span[i])
            at += span[i]
        position_ids[row, at:] = np.arange(capacity - at)  # trailing padding: a sequence of its own
        starts += [row * capacity + at] if at < capacity else []
    offsets = np.array(starts + [len(rows) * capacity], dtype=np.int32)
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(position_ids),
        "labels": torch.from_numpy(labels),
        "cu_seq_lens": torch.from_numpy(offsets),
        "max_length": int(np.diff(offsets).max()),
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
    return {
        key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value for key, value in batch.items()
    }


def hidden_states(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The decoder's final (normed) hidden states at the batch's positions, without the LM head.

    Works for the three methods: FMT is the causal LM; LoRA's adapters live inside its layers;
    prompt tuning puts the soft prompt before each example's embeddings, as peft's forward does:
    in a packed batch into the `virtual` slots (positions 0..P-1 of each example), in a padded one
    prepended to the row with an all-ones mask and default positions (its positions dropped here)."""
    causal_lm = causal_lm_of(model)
    input_ids, position_ids = batch["input_ids"], batch.get("position_ids")
    examples = examples_of(causal_lm, batch)
    if not is_prompt_tuned(model):
        return causal_lm.base_model(
            input_ids=input_ids,
            attention_mask=batch.get("attention_mask"),
            position_ids=position_ids,
            use_cache=False,
            **examples,
        ).last_hidden_state
    prompt = soft_prompt(model)
    embeds = causal_lm.get_input_embeddings()(input_ids)
    if "virtual" in batch:
        slots = prompt[position_ids.clamp(max=len(prompt) - 1)]
        embeds = torch.where(batch["virtual"][..., None], slots, embeds)
        return causal_lm.base_model(
            inputs_embeds=embeds, position_ids=position_ids, use_cache=False, **examples
        ).last_hidden_state
    embeds = torch.cat((prompt.expand(len(input_ids), -1, -1), embeds), dim=1)
    mask = batch["attention_mask"]
    mask = torch.cat((mask.new_ones(len(input_ids), len(prompt)), mask), dim=1)
    return causal_lm.base_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state[
        :, len(prompt) :
    ]


def examples_of(causal_lm, batch: dict) -> dict:
    """Where a packed batch's examples lie, for a model computing attention without a mask
    (finetune.attention packed: ftscale.train.packed_attention); nothing for any other."""
    if "cu_seq_lens" not in batch or causal_lm.config._attn_implementation != packed_attention.NAME:
        return {}
    return {"cu_seq_lens_q": batch["cu_seq_lens"], "max_length_q": batch["max_length"]}


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


def token_micro_batches(span: list[int], budget: int) -> list[list[int]]:
    """Consecutive examples (by number, of these spans) cut into micro-batches whose packed rows hold
    at most `budget` tokens (packed_tokens, padding included); an example longer than the budget
    is a micro-batch of its own."""
    micros, current = [], []
    for i, _ in enumerate(span):
        if current and packed_tokens([span[j] for j in current + [i]]) > budget:
            micros.append(current)
            current = []
        current.append(i)
    return micros + [current] if current else micros


def rank_token_micro_batches(batch: list, prefix: int, budget: int, world: distributed.World) -> list[list]:
    """This rank's micro-batches of a token budget (finetune.micro_batch_unit tokens): its share of
    the batch as training.rank_micro_batches takes it, cut by token_micro_batches. Every rank must
    run as many passes (a sharded forward is a collective): each works out every rank's cut (the
    batch is the same on all) and splits its largest micro-batches in two until it has the most
    any rank needs (smaller never breaks the budget). prefix: soft-prompt slots per example."""
    bounds = [len(batch) * r // world.size for r in range(world.size + 1)]
    shares = [batch[bounds[r] : bounds[r + 1]] for r in range(world.size)]
    cuts = [token_micro_batches([prefix + len(ids) for ids, _ in share], budget) for share in shares]
    passes = max(len(cut) for cut in cuts)
    mine = cuts[world.rank]
    while len(mine) < passes:
        largest = max(range(len(mine)), key=lambda m: len(mine[m]))
        if len(mine[largest]) < 2:
            raise ValueError(
                f"a batch of {len(batch)} cannot be shared by {world.size} ranks in passes of at most "
                f"{budget} tokens: some rank would have an empty pass"
            )
        half = len(mine[largest]) // 2
        mine[largest : largest + 1] = [mine[largest][:half], mine[largest][half:]]
    share = shares[world.rank]
    return [[share[i] for i in micro] for micro in mine]


def accumulate_gradients(
    model,
    batch: list[tuple[np.ndarray, int]],
    micro_batch_size: int | None,
    world: distributed.World = distributed.World(),
    micro_batch_tokens: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward of one optimizer step's batch, in micro-batches (each packed on its own;
    with several ranks, of this rank's share of the batch).

    The gradients (and the loss returned) are those of the whole batch's token-level mean target
    loss: each micro-batch's summed NLL is divided by the WHOLE batch's target-token count, so the
    micro-batches (of all ranks) add up to the full batch's mean, not to a mean of per-micro-batch
    means (tests/unit/test_accumulation.py). Returns the loss (detached; this rank's part of it,
    world.total adds the ranks' parts) and that count. micro_batch_tokens: passes of packed rows of at
    most this many tokens instead (rank_token_micro_batches; micro_batch_size is then not read)."""
    count = torch.tensor(sum(len(ids) - prompt for ids, prompt in batch), device=model_device(model))
    loss = 0
    if micro_batch_tokens is None:
        micros = training.rank_micro_batches(batch, micro_batch_size, world)
    else:
        micros = rank_token_micro_batches(batch, soft_prompt_length(model), micro_batch_tokens, world)
    for index, micro in enumerate(micros):
        distributed.sync_gradients(model, last=index == len(micros) - 1)
        nll, _ = target_nll(model, make_batch(model, micro))
        micro_loss = nll / count
        micro_loss.backward()
        loss = loss + micro_loss.detach()
    return loss, count
