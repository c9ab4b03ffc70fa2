"""Micro-batches never change the science: a batch computed in 4 micro-batches (gradient
accumulation) has the loss and gradients of the same batch in one pass, and one optimizer step
lands on the same parameters, for FMT, prompt tuning, LoRA and pretraining; so does activation
checkpointing, which really recomputes each layer in the backward pass."""

import copy

import numpy as np
import pytest
import torch

from ftscale.data import synthetic, tokens
from ftscale.train import finetune, pretrain, training
from ftscale.train.model import new_model
from tests.unit.test_fast_path import SIZE, model_for  # the same tiny model, non-trivial weights

METHODS = [("fmt", None), ("prompt", 4), ("lora", 2)]
BATCH, MICRO = 8, 2  # 4 micro-batches


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """8 encoded examples of different lengths (so micro-batches hold different target counts)."""
    pairs = synthetic.translation_pairs("en", "de", BATCH, 7)
    tokenizer = tokens.train_tokenizer([p["source"] for p in pairs] + [p["target"] for p in pairs], 300)
    directory = tmp_path_factory.mktemp("accumulation")
    tokens.write_task_split(tokenizer, pairs, directory)
    encoded = finetune.encode_split(tokens.TaskSplit(directory), range(BATCH), 64, 64)
    targets = [len(ids) - prompt for ids, prompt in encoded]
    assert len({sum(targets[i : i + MICRO]) for i in range(0, BATCH, MICRO)}) > 1
    return encoded


def finetuning_model(method, size):
    return model_for(method, size).train()


def windows_batch():
    return torch.from_numpy(np.random.default_rng(0).integers(4, 300, size=(BATCH, 24)))


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    assert out
    return out


def assert_same(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=1e-6, msg=name)


def one_step(model, accumulate, micro_batch_size) -> dict[str, torch.Tensor]:
    """The trainable parameters after one Adafactor step on the batch."""
    model = copy.deepcopy(model)
    optimizer = training.adafactor([p for p in model.parameters() if p.requires_grad], 1e-2, False)
    accumulate(model, micro_batch_size)
    optimizer.step()
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def accumulators(batch):
    """(model, accumulate(model, micro_batch_size) -> loss) per method and for pretraining."""
    cases = {
        method: (
            finetuning_model(method, size),
            lambda model, micro: finetune.accumulate_gradients(model, batch, micro)[0],
        )
        for method, size in METHODS
    }
    cases["pretrain"] = (
        new_model(SIZE, 300, 256, seed=0).train(),
        lambda model, micro: pretrain.accumulate_gradients(model, windows_batch(), micro),
    )
    return cases


@pytest.mark.parametrize("case", ["fmt", "prompt", "lora", "pretrain"])
def test_micro_batches_give_the_full_batch_loss_gradients_and_step(batch, case):
    model, accumulate = accumulators(batch)[case]
    full_loss = accumulate(model, None)
    full = grads(model)
    micro_loss = accumulate(model, MICRO)
    micro = grads(model)
    assert micro_loss.item() == pytest.approx(full_loss.item(), rel=1e-6)
    assert_same(full, micro)
    assert_same(one_step(model, accumulate, None), one_step(model, accumulate, MICRO))


@pytest.mark.parametrize("method, size", METHODS)
def test_finetuning_loss_is_not_a_mean_of_micro_batch_means(batch, method, size):
    """The whole batch's token-level mean: micro-batches holding different numbers of target tokens
    would give another loss if each were averaged on its own (what this test guards against)."""
    model = finetuning_model(method, size)
    with torch.no_grad():
        nlls = [
            finetune.target_nll(model, finetune.make_batch(model, micro))
            for micro in training.micro_batches(batch, MICRO)
        ]
    whole = sum(nll for nll, _ in nlls) / sum(n for _, n in nlls)
    mean_of_means = sum(nll / n for nll, n in nlls) / len(nlls)
    assert abs(whole.item() - mean_of_means.item()) > 1e-3
    assert finetune.accumulate_gradients(model, batch, MICRO)[0].item() == pytest.approx(whole.item(), rel=1e-6)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("case", ["fmt", "prompt", "lora", "pretrain"])
def test_activation_checkpointing_recomputes_layers_and_keeps_gradients(batch, case):
    model, accumulate = accumulators(batch)[case]
    accumulate(model, MICRO)
    plain = grads(model)
    training.checkpoint_activations(finetune.causal_lm_of(model))
    # Count the first layer's feed-forward computations (module hooks are not rerun by the recompute).
    calls, mlp = [], finetune.causal_lm_of(model).model.layers[0].mlp
    forward = mlp.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    mlp.forward = counted
    accumulate(model, MICRO)
    assert len(calls) == 2 * (BATCH // MICRO)  # each micro-batch: forward, then recomputed in backward
    assert_same(plain, grads(model))


def test_micro_batches_cut_in_order():
    assert training.micro_batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert training.micro_batches(list(range(7)), None) == [list(range(7))]
    assert training.micro_batches(list(range(7)), 10) == [list(range(7))]
    with pytest.raises(ValueError, match="micro_batch_size must be a positive integer, got 0"):
        training.micro_batches([1], 0)
