"""The planner's token budgets (finetune.micro_batch_unit tokens) and packed attention
(finetune.attention packed) in the memory model: a packed row as a workload, the budget the rows
that fit one GPU, the default unchanged; checked against bench/bench_packed_attention.py's
measurement of the real step (FakeTensorMode, MemTracker), as test_memory.py checks the others."""

import copy
from pathlib import Path

from ftscale import config
from ftscale.plan import grid, memory, sizing
from tests.unit.test_memory import SMALL

PAPER = config.load(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
ENDE_1B = "translation_ende/1B-283000000000tok/fmt/df100000"


def with_budget(paper: dict, **means) -> dict:
    paper = copy.deepcopy(paper)
    paper["finetune"]["micro_batch_unit"] = "tokens"
    paper["tasks"]["translation_ende"].update(means)
    return paper


def test_packed_attention_drops_the_block_mask_and_the_cast_of_repeated_keys():
    for how in ("fp32", "mixed", "autocast"):
        masked = memory.activation_bytes_per_token_layer(SMALL, how, "fmt", None, row_tokens=100)
        packed = memory.activation_bytes_per_token_layer(SMALL, how, "fmt", None, 100, packed_attention=True)
        # the mask's row of bytes; under autocast also k cast to bf16 after repeat_kv (attention dim 8)
        # where the packed path casts it as it is (kv dim 4)
        assert masked - packed == 100 + (2 * (8 - 4) if how == "autocast" else 0), how


def test_the_default_plans_examples_and_a_budget_plans_rows_of_the_longest_example():
    c = grid.expand_conditions(PAPER)[ENDE_1B]
    examples = sizing.finetune_job(PAPER, c)
    assert examples.micro_batch_tokens is None and examples.micro_batch_size == 32
    budgeted = with_budget(PAPER, mean_source_tokens=45, mean_target_tokens=45)
    plan = sizing.finetune_job(budgeted, c)
    work = sizing.token_work(budgeted, c)
    row = (
        PAPER["tasks"]["translation_ende"]["max_source_tokens"]
        + PAPER["tasks"]["translation_ende"]["max_target_tokens"]
        + 3
    )
    assert work.tokens == row and work.logit_tokens == -(-row * 46 // 93)  # the targets' mean share of a row
    assert plan.micro_batch_size is None and plan.micro_batch_tokens % row == 0
    assert plan.gpus == examples.gpus and plan.peak_gpu_memory_gb <= 0.9 * 80
    # no estimate: the examples at their longest, the same share of targets as a worst-case example
    assert (
        sizing.token_work(with_budget(PAPER), c).logit_tokens
        == PAPER["tasks"]["translation_ende"]["max_target_tokens"] + 1
    )


def test_a_token_budget_plan_is_the_measured_step():
    """bench/bench_packed_attention.py's token_budget_step, 2026-12-03 (torch MemTracker on the real
    FSDP2 step under FakeTensorMode), against the planner's memory at the rows the step packed:
    - fmt-1B: the paper's En-De 1B FMT job on its 4 GPUs, budget 16,480 tokens (32 rows of 515);
      rank 0's share, one example at its longest and 31 of 50 + 50 tokens, packed into 8 rows with
      1,838 targets: 9.08 GB. Summing every term planned 10.69 (1.177): a step of one pass has no
      gradients while backward holds its activations.
    - fmt-16B: summarization 16B FMT on 64 GPUs (HSDP, sharded over a node's 8), 2 rows of 771:
      27.98 GB. Sharding the weights over all 64 planned 22.01 (0.786)."""
    budgeted = with_budget(PAPER, mean_source_tokens=50, mean_target_tokens=50)
    conditions = grid.expand_conditions(budgeted)
    c = conditions[ENDE_1B]
    assert sizing.finetune_job(budgeted, c).micro_batch_tokens == 32 * 515
    work = sizing.token_work(budgeted, c)
    assert work.logit_tokens * 8 == 2040
    planned = memory.device_memory(work, 8, 4, on_gpu=True)
    assert 0.9 < (planned.total - planned.context) / 1e9 / 9.08 < 1.1
    c = conditions["summarization/16B-283000000000tok/fmt/df100000"]
    plan = sizing.finetune_job(budgeted, c)
    assert (plan.gpus, plan.micro_batch_tokens) == (64, 2 * 771)
    assert 0.9 < (plan.memory.total - plan.memory.context) / 1e9 / 27.98 < 1.1
