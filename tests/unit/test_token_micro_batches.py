"""Token-budget micro-batches (finetune.micro_batch_unit tokens, issue 25 item 3): a batch cut into
passes of packed rows of at most T tokens has the loss and gradients of the whole batch in one pass
(and of each example alone), every pass keeps to the budget, and ranks run the same number of passes."""

import numpy as np
import pytest
import torch

from ftscale.train import batches, distributed, finetune
from tests.unit.test_accumulation import METHODS, assert_same, batch, finetuning_model, grads  # noqa: F401
from tests.unit.test_fast_path import plain_nll


def spans(sequences, prefix=0):
    return [prefix + len(ids) for ids, _ in sequences]


@pytest.mark.parametrize("method, size", METHODS)
def test_token_budget_gives_the_whole_batch_and_each_example_alone(batch, method, size):  # noqa: F811
    model = finetuning_model(method, size)
    prefix = batches.soft_prompt_length(model)
    budget = 2 * max(spans(batch, prefix))  # several passes: the batch packs into more
    assert len(batches.token_micro_batches(spans(batch, prefix), budget)) > 1
    whole, _ = finetune.accumulate_gradients(model, batch, None)
    whole_grads = grads(model)
    passes = []
    original = batches.make_batch
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "make_batch", lambda m, micro: passes.append(micro) or original(m, micro))
        budgeted, _ = finetune.accumulate_gradients(model, batch, None, micro_batch_tokens=budget)
    assert len(passes) > 1 and sum(passes, []) == batch  # in order, each example once
    assert all(batches.packed_tokens(spans(micro, prefix)) <= budget for micro in passes)
    assert budgeted.item() == pytest.approx(whole.item(), rel=1e-6)
    assert_same(whole_grads, grads(model))
    if method == "fmt":  # and each example alone: the token-level mean of their target losses
        with torch.no_grad():
            alone = sum(plain_nll(model, ids, prompt) for ids, prompt in batch)
        assert budgeted.item() == pytest.approx(alone.item() / sum(len(i) - p for i, p in batch), rel=1e-5)


def test_cuts_keep_the_budget_and_an_overlong_example_goes_alone():
    span = [5, 9, 3, 12, 7, 7, 2]
    cuts = batches.token_micro_batches(span, 14)
    assert sum(cuts, []) == list(range(7))
    assert all(batches.packed_tokens([span[i] for i in cut]) <= 14 or len(cut) == 1 for cut in cuts)
    # 5 and 9 do not share a row of 9: two rows, 18 tokens, over the budget
    assert cuts[0] == [0] and batches.token_micro_batches([20, 1], 10) == [[0], [1]]
    assert batches.token_micro_batches(span, 1000) == [list(range(7))]


def test_ranks_run_as_many_passes_within_the_budget():
    rng = np.random.default_rng(0)
    examples = [(np.zeros(n, dtype=np.int64), 1) for n in rng.integers(3, 30, size=16)]
    world = 2
    per_rank = [batches.rank_token_micro_batches(examples, 0, 40, distributed.World(r, world)) for r in range(world)]
    assert len(per_rank[0]) == len(per_rank[1]) > 1
    assert [ex for rank in per_rank for micro in rank for ex in micro] == examples  # together the batch, in order
    assert all(batches.packed_tokens(spans(micro)) <= 40 for rank in per_rank for micro in rank)
    with pytest.raises(ValueError, match="passes of at most 1 tokens: some rank would have an empty pass"):
        batches.rank_token_micro_batches(examples[:3], 0, 1, distributed.World(0, 2))
