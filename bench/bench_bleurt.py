"""BLEURT's cost on this machine (ftscale.evaluate.bleurt): a BLEURT-shaped checkpoint with random
weights (tests/tiny_bleurt.py; no download) per shape, its parameters and weight file size, load
time (after importing transformers' encoder classes, timed apart), and scoring time per 1,000
sentence pairs through the evaluate job's scorer (Bleurt.score), measured on --sentences pairs of
20-29 words (a news sentence's length) and scaled to 1,000.
Prints the figures and merges them into results/bench/summary.json; no assertions.

Shapes: `test` is the test model (tests/unit/test_bleurt.py); `bleurt20` is BLEURT-20's published
RemBERT shape (32 layers, 1152 wide, 18 heads, 4608 FFN, 256-wide embeddings) on the test's
40-piece vocabulary, so its embedding table is small and its encoder full size.

Usage: .venv/bin/python bench/bench_bleurt.py [--shapes test bleurt20] [--sentences 1000 8] [--threads 1] [--quick]
(--quick: the test shape on 16 pairs, the test suite's run, tests/unit/test_bench_quick.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402

from ftscale.evaluate import bleurt  # noqa: E402
from tests.tiny_bleurt import TINY, build_bleurt, sentences  # noqa: E402

SHAPES = {
    "test": (8, TINY),
    "bleurt20": (
        256,
        {
            "hidden_size": 1152,
            "num_hidden_layers": 32,
            "num_attention_heads": 18,
            "intermediate_size": 4608,
            "max_position_embeddings": 512,
        },
    ),
}


def measure(name: str, count: int, scratch: Path) -> dict:
    """One shape's figures; load_s excludes importing transformers' encoder classes (main does it)."""
    embedding_size, shape = SHAPES[name]
    directory, _, state, _ = build_bleurt(scratch / name, embedding_size, shape=shape)
    del state
    start = time.perf_counter()
    scorer = bleurt.load(directory)
    load_s = time.perf_counter() - start
    references, candidates = sentences(count, 2, (20, 30)), sentences(count, 3, (20, 30))
    pieces = sum(len(scorer.encode(r, c)[0]) for r, c in zip(references, candidates)) / count
    start = time.perf_counter()
    scorer.score(references, candidates, batch_size=16)
    seconds = time.perf_counter() - start
    return {
        "params": sum(p.numel() for p in scorer.model.parameters()),
        "weights_mb": round((directory / "pytorch_model.bin").stat().st_size / 1e6, 2),
        "load_s": round(load_s, 2),
        "pairs": count,
        "pieces_per_pair": round(pieces, 1),
        "s_per_1000_pairs": round(seconds / count * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--sentences", type=int, nargs="+", default=[1000, 8], help="pairs per shape, in order")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the test shape on 16 pairs")
    args = parser.parse_args()
    if args.quick:
        args.shapes, args.sentences = ["test"], [16]
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    from transformers import BertForSequenceClassification, RemBertForSequenceClassification  # noqa: F401

    figures = {"import_s": round(time.perf_counter() - start, 2)}  # once per job; the evaluate job has paid it
    print(f"importing the encoder classes: {figures['import_s']} s")
    with tempfile.TemporaryDirectory(prefix="bench-bleurt-") as scratch:
        for name, count in zip(args.shapes, args.sentences):
            figures[name] = measure(name, count, Path(scratch)) | {"threads": args.threads}
            print(f"{name:9s} {json.dumps(figures[name])}", flush=True)
    print(f"merged into {bench_summary.merge({'bleurt': figures})}")


if __name__ == "__main__":
    main()
