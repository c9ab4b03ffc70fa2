"""What micro-batches cost: time per optimizer step with the batch in 4 micro-batches over the same
batch in one pass (gradient accumulation; same loss and gradients: tests/unit/test_accumulation.py).

Side by side in one process, 1 thread, the two alternating step by step (so load from other
processes hits both alike), median of --steps each after a warm-up:
- pretraining: the toy's largest model (config.yaml `models:`), its pretrain batch and window length;
- finetuning (FMT): the same model, a batch of the toy's FMT batch size of random examples with
  translation's lengths.
accumulation_overhead is the larger of the two ratios (target <= 1.10). On a GPU (where micro-batches
are for) the ratio is lower still: a micro-batch there is large enough to fill the device.

Prints the figures and merges them into results/bench/summary.json.
Usage: .venv/bin/python bench/bench_accumulation.py [--steps 10] [--micro-batches 4] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py
import yaml

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def step_seconds(model, accumulate, micro_batch_sizes: list, steps: int) -> list[float]:
    """Median seconds per optimizer step for each micro-batch size, measured alternately."""
    from ftscale.train import training

    optimizer = training.adafactor([p for p in model.parameters() if p.requires_grad], 1e-3, False)
    times = {m: [] for m in micro_batch_sizes}
    for repeat in range(steps + 1):  # the first round warms up and is dropped
        for micro in micro_batch_sizes:
            start = time.perf_counter()
            accumulate(model, micro)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if repeat:
                times[micro].append(time.perf_counter() - start)
    return [statistics.median(times[m]) for m in micro_batch_sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="the smallest toy model, 1 step (the tests' run)")
    args = parser.parse_args()
    if args.quick:
        args.steps = 1
    import numpy as np
    import torch

    from ftscale.data.tokens import BOS_ID, SEP_ID
    from ftscale.train import finetune, pretrain, training
    from ftscale.train.model import new_model

    training.set_threads(1)
    config = yaml.safe_load(args.config.read_text())
    size = list(config["models"].values())[0 if args.quick else -1]
    vocab = config["data"]["tokenizer_vocab_size"]
    rng = np.random.default_rng(0)
    figures = {}

    p = config["pretrain"]
    windows = torch.from_numpy(rng.integers(4, vocab, size=(p["batch_size"], p["seq_len"])))
    model = new_model(size, vocab, p["seq_len"], seed=0).train()
    one, micro = step_seconds(
        model,
        lambda m, mb: pretrain.accumulate_gradients(m, windows, mb),
        [None, -(-len(windows) // args.micro_batches)],
        args.steps,
    )
    figures["pretrain"] = {"batch": len(windows), "one_pass_s": one, "micro_batches_s": micro, "ratio": micro / one}

    task = config["tasks"]["translation_ende"]
    batch_size = config["finetune"]["methods"]["fmt"]["batch_size"]
    examples = []
    for _ in range(batch_size):
        source = rng.integers(4, vocab, size=rng.integers(8, task["max_source_tokens"]))
        target = rng.integers(4, vocab, size=rng.integers(8, task["max_target_tokens"]))
        examples.append((np.concatenate(([BOS_ID], source, [SEP_ID], target)).astype(np.int64), len(source) + 2))
    model = new_model(size, vocab, 2 * task["max_source_tokens"] + 4, seed=0).train()
    one, micro = step_seconds(
        model,
        lambda m, mb: finetune.accumulate_gradients(m, examples, mb),
        [None, -(-batch_size // args.micro_batches)],
        args.steps,
    )
    figures["finetune_fmt"] = {"batch": batch_size, "one_pass_s": one, "micro_batches_s": micro, "ratio": micro / one}

    result = {
        "accumulation_overhead": max(f["ratio"] for f in figures.values()),
        "accumulation": {"model": size, "micro_batches": args.micro_batches, "threads": 1} | figures,
    }
    print(json.dumps(result, indent=1))
    print(f"merged into {bench_summary.merge(result)}")


if __name__ == "__main__":
    main()
