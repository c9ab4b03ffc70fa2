"""Tokenization, the target-only loss, what each method trains, subsets, decoding, metrics."""

import numpy as np
import pytest
import torch

from ftscale.data import tokens
from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID, SEP_ID
from ftscale.evaluate import decode
from ftscale.train import finetune, training
from ftscale.train.model import count_parameters, new_model
from tests import padded_batches

SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
LINES = [f"der hund {w} die katze {w}s schnell" for w in ("sieht", "jagt", "kennt", "ruft")] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return tokens.train_tokenizer(LINES, 300)


@pytest.fixture(scope="module")
def task_split(tmp_path_factory, tokenizer):
    records = [{"source": LINES[i], "target": LINES[i + 1], "lang": "en" if i % 4 else "de"} for i in range(40)]
    directory = tmp_path_factory.mktemp("split")
    tokens.write_task_split(tokenizer, records, directory)
    return tokens.TaskSplit(directory)


def test_tokenizer_round_trip_and_special_ids(tokenizer):
    text = "die katze jagt den hund, schnell."
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(ids) == text
    assert [tokenizer.token_to_id(t) for t in tokens.SPECIAL_TOKENS] == [0, 1, 2, 3]


def test_task_split_arrays(task_split, tokenizer):
    assert len(task_split) == 40
    source, target = task_split.example(3, 1000, 1000)
    assert tokenizer.decode(source.tolist()) == LINES[3]
    assert tokenizer.decode(target.tolist()) == LINES[4]
    short, _ = task_split.example(3, 2, 1000)
    assert len(short) == 2


def test_loss_is_on_target_tokens_only(task_split):
    model = new_model(SIZE, 300, 128, seed=0)
    batch = padded_batches.collate([task_split.example(i, 64, 64) for i in range(4)])
    nll, count = finetune.target_nll(model, batch)
    target_tokens = sum(len(task_split.example(i, 64, 64)[1]) + 1 for i in range(4))  # + </s>
    assert int(count) == target_tokens
    # The same sum computed from positions alone: the tokens after <sep>, nothing before it.
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    log_probs = torch.log_softmax(logits, dim=-1)
    expected = 0.0
    for row in range(4):
        source, target = task_split.example(row, 64, 64)
        ids = batch["input_ids"][row]
        for position in range(len(source) + 2, len(source) + len(target) + 3):
            expected -= log_probs[row, position - 1, ids[position]].item()
    assert nll.item() == pytest.approx(expected, rel=1e-5)
    # Relabelling source positions (as a buggy collate might) would change the loss; ours never does.
    relabelled = dict(batch, labels=batch["input_ids"].clone())
    assert finetune.target_nll(model, relabelled)[0].item() > nll.item() + 1.0


@pytest.mark.parametrize("method, sizes", [("prompt", (4, 8)), ("lora", (2, 4))])
def test_methods_train_exactly_their_parameters(method, sizes):
    counts = []
    for size in sizes:
        model = finetune.attach_method(new_model(SIZE, 300, 128, seed=0), method, size, seed=0)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if method == "prompt":
            assert all("prompt_encoder" in n for n in trainable)
        else:
            assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
            targeted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
            # all-linear reaches the paper's attention and feed-forward projections, not the LM head
            assert targeted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
        counts.append(count_parameters(model, trainable_only=True))
    if method == "prompt":  # prompt length x model dim
        assert counts == [sizes[0] * SIZE["model_dim"], sizes[1] * SIZE["model_dim"]]
    else:  # linear in the rank
        assert counts[1] == 2 * counts[0]
    full = new_model(SIZE, 300, 128, seed=0)
    assert finetune.attach_method(full, "fmt", None, 0) is full


def test_subset_keeps_language_mix_and_nests(task_split):
    small = finetune.subset(task_split, 8, seed=1)
    large = finetune.subset(task_split, 20, seed=1)
    assert len(set(small)) == 8 and set(small) <= set(large)
    langs, counts = np.unique(task_split.lang[large], return_counts=True)
    assert dict(zip(langs, counts)) == {"de": 5, "en": 15}  # the pool is 1/4 de
    assert not np.array_equal(finetune.subset(task_split, 8, seed=2), small)
    with pytest.raises(ValueError, match="exceeds the training pool"):
        finetune.subset(task_split, 41, seed=0)


def test_cosine_schedule():
    assert training.cosine_lr(0, 100, 1.0, 0.1) == pytest.approx(1.0)
    assert training.cosine_lr(100, 100, 1.0, 0.1) == pytest.approx(0.1)
    assert training.cosine_lr(50, 100, 1.0, 0.1) == pytest.approx(0.55)
    assert training.cosine_lr(0, 100, 1.0, 0.1, warmup_steps=10) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def varied_split(tmp_path_factory, tokenizer):
    """Prompts of many lengths, so that batches need padding."""
    from ftscale.data import synthetic

    directory = tmp_path_factory.mktemp("varied")
    tokens.write_task_split(tokenizer, synthetic.translation_pairs("en", "de", 24, 0), directory)
    split = tokens.TaskSplit(directory)
    assert len({len(split.example(i, 64, 0)[0]) for i in range(len(split))}) >= 8
    return split


@pytest.mark.parametrize("method, size", [("fmt", None), ("prompt", 4), ("lora", 2)])
def test_batched_greedy_decoding_equals_one_at_a_time(varied_split, method, size):
    task_split = varied_split
    model = finetune.attach_method(new_model(SIZE, 300, 128, seed=0), method, size, seed=0)
    torch.manual_seed(1)
    with torch.no_grad():  # large random weights make varied, non-trivial outputs
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    batched = decode.greedy_decode(model, task_split, 64, 6, batch_size=16)
    # The reference: transformers' (and for PET peft's) own generate, one unpadded prompt at a time.
    single = []
    for i in range(len(task_split)):
        ids = torch.tensor([[BOS_ID, *task_split.example(i, 64, 0)[0].tolist(), SEP_ID]])
        new = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=6,
            eos_token_id=EOS_ID,
            pad_token_id=PAD_ID,
        )[0, ids.shape[1] :].tolist()
        single.append(new[: new.index(EOS_ID)] if EOS_ID in new else new)
    assert batched == single
    assert any(len(o) > 0 for o in batched)
