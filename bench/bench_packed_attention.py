"""Memory of attention over packed rows, transformers' `sdpa` (a dense 4-D block mask, the K/V head
repeated to every query head) against finetune.attention `packed` (ftscale.train.packed_attention: no
mask; flash attention's variable-length kernel, the one K/V head as it is), measured at the paper's
16B shape on the CPU. Prints figures and merges `packed_attention_gb` into results/bench/summary.json;
no assertions.

How it is measured (as bench/bench_memory.py): the real decoder (ftscale.train.model.new_model) with
bf16 weights (the compute dtype of a sharded job's gathered units), every tensor a FakeTensor, torch's
MemTracker over the forward and backward of the packed rows' hidden states; the peak is its largest
total. The GPU's varlen kernel runs as its registered fake (shapes and dtypes, no compute). Measured at
1 and 2 decoder layers: the difference is one layer's, the rest the model's layers times it.

Usage: .venv/bin/python bench/bench_packed_attention.py [--rows 16] [--row-tokens 1024] [--example-tokens 100]
  [--autocast] (fp32 weights under bf16 autocast: a one-GPU job) [--quick] (a tiny shape: the test suite's run)
  [--token-budget fmt-1B fmt-16B] (also one token-budget step of each against the plan: token_budget_step)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from unittest import mock

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import summary as bench_summary  # noqa: E402  bench/summary.py
import torch  # noqa: E402
from bench_memory import KnownValues, PeakTracker, materialize  # noqa: E402

PAPER_16B = {"layers": 40, "heads": 20, "head_dim": 256, "ffn_dim": 20480, "model_dim": 5120}
QUICK = {"layers": 2, "heads": 4, "head_dim": 16, "ffn_dim": 64, "model_dim": 32}


def packed_rows(rows: int, row_tokens: int, example_tokens: int) -> dict:
    """`rows` rows of `row_tokens`, filled with examples of `example_tokens` (as pack lays them out)."""
    from ftscale.train.batches import pack

    per_row = row_tokens // example_tokens
    examples = [(np.full(example_tokens, 5, dtype=np.int64), 1) for _ in range(rows * per_row)]
    # one example as long as a row sets the rows' length; the others fill rows of it
    examples[0] = (np.full(row_tokens, 5, dtype=np.int64), 1)
    return pack(examples)


def measure(size: dict, layers: int, vocab: int, batch: dict, attention: str, autocast: bool = False) -> float:
    """Peak bytes of the decoder's forward and backward on the batch, weights that train: bf16 (a
    sharded job's), or with `autocast` fp32 under bf16 autocast (a one-GPU job's)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from ftscale.train import batches, packed_attention
    from ftscale.train.model import new_model

    with torch.device("meta"):
        model = new_model(dict(size, layers=layers), vocab, batch["input_ids"].shape[1], seed=0)
        model.to(torch.float32 if autocast else torch.bfloat16).requires_grad_(True)
    if attention == "packed":
        packed_attention.use(model, probe=False)  # a meta model cannot run the probe; Llama honours it
    gpu = mock.patch.object(packed_attention, "varlen_kernel", lambda query: True)
    with FakeTensorMode(allow_non_fake_inputs=True):
        materialize(model)
        tracker = PeakTracker()
        tracker.track_external(model)
        with gpu, tracker, KnownValues(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            hidden = batches.hidden_states(model, batch)
            hidden.float().square().mean().backward()
        peak = tracker.get_tracker_snapshot("peak")
    return float(sum(device["Total"] for device in peak.values()))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--row-tokens", type=int, default=1024)
    parser.add_argument("--example-tokens", type=int, default=100)
    parser.add_argument("--autocast", action="store_true", help="fp32 weights under bf16 autocast (one GPU)")
    parser.add_argument("--quick", action="store_true", help="a tiny shape (the test suite's run)")
    parser.add_argument(
        "--token-budget",
        nargs="+",
        default=[],
        metavar="KIND",
        help="also one step of a token budget for each (bench_memory's KIND, e.g. fmt-1B)",
    )
    parser.add_argument("--no-merge", action="store_true", help="print only; leave results/bench/summary.json")
    args = parser.parse_args(argv)
    size, vocab = (QUICK, 512) if args.quick else (PAPER_16B, 256_000)
    rows, row_tokens, example_tokens = (4, 64, 10) if args.quick else (args.rows, args.row_tokens, args.example_tokens)
    batch = packed_rows(rows, row_tokens, example_tokens)
    rows = len(batch["input_ids"])
    print(
        f"decoder of {size['layers']} layers ({size['heads']} heads x {size['head_dim']}, one K/V head), "
        f"{rows} packed rows of {row_tokens} tokens, examples of {example_tokens}, "
        f"{'fp32 weights under bf16 autocast' if args.autocast else 'bf16 weights'}; GB"
    )
    whole_label = f"{size['layers']} layers"
    print(f"{'attention':10s} {'1 layer':>9s} {'2 layers':>9s} {'a layer':>9s} {whole_label:>10s}")
    figures = {}
    for attention in ("sdpa", "packed"):
        one, two = (measure(size, k, vocab, batch, attention, args.autocast) for k in (1, 2))
        per_layer = two - one
        whole = one + per_layer * (size["layers"] - 1)
        figures[attention] = {"layer": per_layer / 1e9, "model": whole / 1e9}
        print(f"{attention:10s} {one / 1e9:9.4f} {two / 1e9:9.4f} {per_layer / 1e9:9.4f} {whole / 1e9:10.3f}")
    saved = figures["sdpa"]["model"] - figures["packed"]["model"]
    mask_gb = rows * row_tokens * row_tokens / 1e9  # one (rows, 1, T, T) boolean mask, for scale
    print(f"packed saves {saved:.2f} GB at {size['layers']} layers (one dense mask: {mask_gb:.3f} GB)")
    key = "packed_attention_gb" + ("_autocast" if args.autocast else "") + ("_quick" if args.quick else "")
    result = {key: figures | {"rows": rows, "row_tokens": row_tokens, "example_tokens": example_tokens}}
    steps = {kind: token_budget_step(kind) for kind in args.token_budget}
    if steps:
        result["token_budget_planned_over_measured"] = {k: s["planned_gb"] / s["measured_gb"] for k, s in steps.items()}
    if not args.no_merge:
        with contextlib.suppress(OSError):
            print(f"merged into {bench_summary.merge(result)}")
    return result


def token_budget_step(kind: str = "fmt-1B", example_source: int = 50, example_target: int = 50) -> dict:
    """One finetuning step of a token budget (finetune.micro_batch_unit tokens) measured as
    bench_memory measures its jobs (the real sharded step, FakeTensorMode, MemTracker), against the
    planner's memory at the rows the step packed. The job: bench_memory's `kind` of the paper's grid
    on its planned GPUs; its batch: per rank one example at its longest (the rows' length) and the
    rest of `example_source` + `example_target` tokens, the tasks' mean lengths set to them."""
    import dataclasses

    import bench_memory

    from ftscale import config as config_module
    from ftscale.plan import grid, sizing
    from ftscale.train import batches, finetune
    from ftscale.train.distributed import World
    from ftscale.train.finetune import encode

    config = config_module.load(bench_memory.PAPER)
    job = bench_memory.planned_jobs(config)[kind]
    condition = grid.expand_conditions(config)[job.label]
    task = config["tasks"][condition.task]
    task.update(mean_source_tokens=example_source, mean_target_tokens=example_target)
    config["finetune"]["micro_batch_unit"] = "tokens"
    plan = sizing.finetune_job(config, condition)
    rng = np.random.default_rng(0)
    share = job.batch // plan.gpus
    examples = [
        encode(rng.integers(4, job.vocab, job.source if i % share == 0 else example_source),
               rng.integers(4, job.vocab, job.target if i % share == 0 else example_target))
        for i in range(job.batch)
    ]  # fmt: skip
    mine = batches.rank_token_micro_batches(examples, 0, plan.micro_batch_tokens, World(0, plan.gpus))
    assert len(mine) == 1, "one pass: the share fits the budget"
    rows = len(batches.pack(mine[0])["input_ids"])
    targets = sum(len(ids) - prompt for ids, prompt in mine[0])
    accumulate = finetune.accumulate_gradients

    def budgeted(model, batch, micro, world):
        return accumulate(model, batch, None, world, micro_batch_tokens=plan.micro_batch_tokens)

    measured_job = dataclasses.replace(job, gpus=plan.gpus, micro=1, target=targets - 1)
    with (
        mock.patch.object(bench_memory, "worst_case_examples", lambda job, count: examples),
        mock.patch.object(finetune, "accumulate_gradients", budgeted),
    ):
        measured = bench_memory.measure(measured_job)
    # the planner's memory of a budget, at the rows this step packed, in its one pass
    shards = sizing.fsdp_shards(sizing.cluster_options(config), plan.gpus)
    planned = sizing.step_memory(sizing.token_work(config, condition), rows, shards, passes=1)
    planned_bytes = planned.total - planned.context
    print(
        f"{kind} token budget {plan.micro_batch_tokens} on {plan.gpus} GPUs: {rows} rows of {job.source + job.target + 3} "
        f"tokens, {targets} targets; planned {planned_bytes / 1e9:.2f} GB, measured {measured / 1e9:.2f} GB, "
        f"ratio {planned_bytes / measured:.3f}"
    )
    return {"rows": rows, "planned_gb": planned_bytes / 1e9, "measured_gb": measured / 1e9}


if __name__ == "__main__":
    main()
