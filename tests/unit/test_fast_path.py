"""Speed never changes the science: the finetuning fast path (target-only LM head, packed or padded
batches, examples encoded once) gives the loss and gradients of the plain per-example computation,
and its batches are a pure function of (seed, epoch)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ftscale.data import synthetic, tokens
from ftscale.train import finetune, packed_attention
from ftscale.train.model import new_model
from tests import padded_batches

SIZE = {"layers": 2, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
METHODS = [("fmt", None), ("prompt", 4), ("lora", 2)]


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Encoded examples of many lengths, so that batches need padding."""
    pairs = synthetic.translation_pairs("en", "de", 24, 5)
    tokenizer = tokens.train_tokenizer([p["source"] for p in pairs] + [p["target"] for p in pairs], 300)
    directory = tmp_path_factory.mktemp("fast")
    tokens.write_task_split(tokenizer, pairs, directory)
    encoded = finetune.encode_split(tokens.TaskSplit(directory), range(24), 64, 64)
    assert len({len(ids) for ids, _ in encoded}) >= 8
    return encoded


def model_for(method, size):
    model = finetune.attach_method(new_model(SIZE, 300, 256, seed=0), method, size, seed=0)
    torch.manual_seed(1)
    with torch.no_grad():  # non-trivial weights everywhere (LoRA's B starts at zero)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    if method == "fmt":
        model.requires_grad_(True)
    return model


def plain_nll(model, ids: np.ndarray, prompt: int) -> torch.Tensor:
    """One example alone, no padding: the model's full logits, target tokens (and </s>) only; under
    transformers' own SDPA, whatever attention the batches use."""
    causal_lm = finetune.causal_lm_of(model)
    attention = causal_lm.config._attn_implementation
    causal_lm.set_attn_implementation("sdpa")
    input_ids = torch.from_numpy(ids)[None]
    logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0, -len(ids) :]
    causal_lm.set_attn_implementation(attention)
    return F.cross_entropy(logits[prompt - 1 : -1].float(), input_ids[0, prompt:], reduction="sum")


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return out


# make_batch: packed rows; packed: the same without a mask (finetune.attention packed)
BATCHINGS = [(m, s, b) for m, s in METHODS for b in ("pad", "make_batch", "packed")]


def batch_of(model, batching, sequences):
    if batching == "packed":
        packed_attention.use(finetune.causal_lm_of(model))
    return padded_batches.pad(sequences) if batching == "pad" else finetune.make_batch(model, sequences)


def test_packing_fills_rows_and_restarts_positions(examples):
    batch = finetune.pack(examples)
    longest = max(len(ids) for ids, _ in examples)
    assert batch["input_ids"].shape[1] == longest and len(batch["input_ids"]) < len(examples)
    starts = batch["position_ids"] == 0
    real = starts & (batch["input_ids"] == tokens.BOS_ID)
    assert int(real.sum()) == len(examples)  # every example once
    assert sorted(batch["labels"][batch["labels"] != finetune.IGNORE].tolist()) == sorted(
        t for ids, prompt in examples for t in ids[prompt:].tolist()
    )
    prompted = finetune.make_batch(model_for("prompt", 4), examples)  # 4 soft-prompt slots each
    assert int(prompted["virtual"].sum()) == 4 * len(examples)
    assert prompted["input_ids"].shape[1] == longest + 4
    assert "virtual" not in finetune.make_batch(model_for("lora", 2), examples)


@pytest.mark.parametrize("method, size, batching", BATCHINGS)
def test_batch_loss_equals_per_example_loss(examples, method, size, batching):
    model = model_for(method, size)
    model.eval()
    with torch.no_grad():
        nll, count = finetune.target_nll(model, batch_of(model, batching, examples))
        plain = [plain_nll(model, ids, prompt) for ids, prompt in examples]
    assert int(count) == sum(len(ids) - prompt for ids, prompt in examples)  # target + </s>, nothing else
    assert (nll / count).item() == pytest.approx((sum(plain) / int(count)).item(), rel=1e-5)
    # Batched dev loss (sorted by length, other batch sizes) is the same token-level mean.
    assert finetune.sequences_loss(model, examples, 5) == pytest.approx((sum(plain) / int(count)).item(), rel=1e-5)


@pytest.mark.parametrize("method, size, batching", BATCHINGS)
@pytest.mark.parametrize("bucket_batches", [1, 3])
def test_batch_gradients_equal_unpadded_per_example(examples, method, size, batching, bucket_batches):
    model = model_for(method, size)
    lengths = np.array([len(ids) for ids, _ in examples])
    batch = [examples[i] for i in finetune.epoch_batches(lengths, 8, 0, 0, bucket_batches)[0]]
    assert len({len(ids) for ids, _ in batch}) > 1  # needs padding or packing
    nll, count = finetune.target_nll(model, batch_of(model, batching, batch))
    (nll / count).backward()
    fast = grads(model)
    total = sum(plain_nll(model, ids, prompt) for ids, prompt in batch)
    (total / sum(len(ids) - prompt for ids, prompt in batch)).backward()
    plain = grads(model)
    assert fast.keys() == plain.keys() and fast
    for name in fast:
        torch.testing.assert_close(fast[name], plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_epoch_batches_are_a_pure_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(5, 200, size=100)
    for buckets in (1, 16):
        first = finetune.epoch_batches(lengths, 16, 3, 2, buckets)
        assert [b.tolist() for b in first] == [b.tolist() for b in finetune.epoch_batches(lengths, 16, 3, 2, buckets)]
        assert sorted(np.concatenate(first).tolist()) == list(range(100))  # each example once
        assert [len(b) for b in first].count(16) == 6 and len(first) == 7  # ceil(100 / 16) steps
        assert [b.tolist() for b in finetune.epoch_batches(lengths, 16, 3, 3, buckets)] != [b.tolist() for b in first]
        assert [b.tolist() for b in finetune.epoch_batches(lengths, 16, 4, 2, buckets)] != [b.tolist() for b in first]

    def padding(batches):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)

    plain = finetune.epoch_batches(lengths, 16, 3, 2)
    assert padding(finetune.epoch_batches(lengths, 16, 3, 2, 16)) < padding(plain) / 3  # bucketing pads little
    # The default is plain random batching: the epoch's permutation cut in order.
    order = np.random.default_rng(finetune.training.derive_seed(3, "epoch", 2)).permutation(100)
    assert [sorted(b.tolist()) for b in plain] == [sorted(order[i : i + 16].tolist()) for i in range(0, 100, 16)]
