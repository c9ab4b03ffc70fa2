"""Peak memory and speed of the tokenizing stages, which stream: peak RSS should be flat in the corpus
size (prints figures, merges them into results/bench/summary.json; no assertions).

A synthetic corpus of --sizes-mb megabytes (lines of 5-40 words from a 5,000-word vocabulary) is
tokenized in a fresh process each, the way the scripts do it, and its peak RSS (wait4 ru_maxrss)
and time taken:
- pretrain: scripts/tokenize_pretrain.py (common.text_blocks into tokens.write_pretrain_batches);
- task: scripts/tokenize_task.py (common.iter_jsonl into tokens.write_task_split) on records
  {source, target, lang} made of the same lines, the same megabytes of jsonl.
Figures: tokenize_peak_rss_mb {stage: {size_mb: MB}}, tokenize_mb_per_s {stage: {size_mb: MB/s}},
tokenize_mb_per_cpu_s (the same per CPU-second: what ftscale.plan.data_jobs.STAGES plans with, since
on a shared machine the wall time counts the others' work too), tokenize_threads (--threads: the
encoder's, as a rule's `threads:` gives them) and tokenize_chunk_chars (common.STREAM_CHUNK, what
they were measured at). Before the streams, the jobs held the whole text and its token ids as
Python lists: many times the corpus. Defaults 1,024 and 4,096 MB (5 GB of disk in a temporary
directory, a size at a time; at the 2-core VM's 1.35 MB per CPU-second, over an hour);
--quick: 1 and 2 MB, the test suite's run (tests/unit/test_bench_tokenize.py).

Usage: .venv/bin/python bench/bench_tokenize.py [--sizes-mb 1024 4096] [--stages pretrain task] [--threads N]
       [--quick] [--no-merge]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from ftscale.data import common, tokens  # noqa: E402

TOKENIZE = """
import sys
from pathlib import Path
from ftscale.data import common, tokens
stage, tokenizer, corpus, out = sys.argv[1], tokens.load_tokenizer(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
if stage == "pretrain":
    print(tokens.write_pretrain_batches(tokenizer, common.text_blocks(corpus), out))
else:
    print(tokens.write_task_split(tokenizer, common.iter_jsonl(corpus), out))
"""


def corpus_lines(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocabulary = [f"w{i:04d}" for i in range(5000)]
    return [" ".join(rng.choices(vocabulary, k=rng.randint(5, 40))) for _ in range(20000)]


def write_corpus(path: Path, megabytes: float, stage: str) -> None:
    """`megabytes` of text (pretrain) or of jsonl records (task), whole lines, the 20,000 repeated."""
    lines = corpus_lines()
    if stage == "task":
        lines = [json.dumps({"source": s, "target": t, "lang": "en"}) for s, t in zip(lines[::2], lines[1::2])]
    block = "".join(line + "\n" for line in lines).encode()
    ends = list(itertools.accumulate(len(line.encode()) + 1 for line in lines))  # byte after each line
    left = int(megabytes * 2**20)
    with open(path, "wb") as f:
        for _ in range(left // len(block)):
            f.write(block)
        rest = left % len(block)
        f.write(block[: ends[bisect.bisect_left(ends, rest)]] if rest else b"")


def measure(stage: str, tokenizer: Path, corpus: Path, out: Path, threads: int) -> tuple[int, float, float, float]:
    """(tokens or records written, peak RSS MB, seconds, CPU seconds) of one stage in a fresh process
    whose encoder runs `threads` threads (tokens.encoder_threads: RAYON_NUM_THREADS, as the scripts set it)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", TOKENIZE, stage, str(tokenizer), str(corpus), str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **tokens.encoder_threads(threads)},
        stdout=subprocess.PIPE,
        text=True,
    )
    count = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak (RUSAGE_CHILDREN: all so far)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"tokenizing {corpus} ({stage}) failed (exit {os.waitstatus_to_exitcode(status)})")
    return int(count), usage.ru_maxrss / 1024, time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1024, 4096])
    parser.add_argument("--stages", nargs="+", choices=["pretrain", "task"], default=["pretrain", "task"])
    parser.add_argument("--threads", type=int, default=1, help="the encoder's threads (a rule's threads:)")
    parser.add_argument("--quick", action="store_true", help="1 and 2 MB (the test suite's run)")
    parser.add_argument("--no-merge", action="store_true", help="print only; leave summary.json alone")
    args = parser.parse_args(argv)
    sizes = [1, 2] if args.quick else args.sizes_mb
    peak, speed, cpu_speed, counts = {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as scratch:
        scratch = Path(scratch)
        tokenizer = scratch / "tokenizer.json"
        tokens.train_tokenizer(corpus_lines(), 8000).save(str(tokenizer))
        for stage in args.stages:
            peak[stage], speed[stage], cpu_speed[stage], counts[stage] = {}, {}, {}, {}
            for megabytes in sizes:
                corpus = scratch / f"{stage}{megabytes}.txt"
                write_corpus(corpus, megabytes, stage)
                out = scratch / f"out-{stage}{megabytes}"
                count, rss, seconds, cpu = measure(stage, tokenizer, corpus, out, args.threads)
                size = corpus.stat().st_size / 2**20
                key = f"{megabytes:g}"
                peak[stage][key], speed[stage][key], counts[stage][key] = round(rss, 1), round(size / seconds, 2), count
                cpu_speed[stage][key] = round(size / cpu, 2)
                unit = "tokens" if stage == "pretrain" else "records"
                print(
                    f"{stage:8s} {size:8.1f} MB: {count:,} {unit}, peak RSS {rss:,.0f} MB, {size / seconds:.2f} MB/s, "
                    f"{size / cpu:.2f} MB per CPU-second ({args.threads} encoder threads)",
                    flush=True,
                )
                corpus.unlink()
                for leftover in (scratch / f"out-{stage}{megabytes}").iterdir():
                    leftover.unlink()
    figures = {
        "tokenize_peak_rss_mb": peak,
        "tokenize_mb_per_s": speed,
        "tokenize_mb_per_cpu_s": cpu_speed,
        "tokenize_threads": args.threads,
        "tokenize_chunk_chars": common.STREAM_CHUNK,
    }
    if not args.no_merge:
        print(f"merged into {bench_summary.merge(figures)}")
    return {"peak_rss_mb": peak, "mb_per_s": speed, "mb_per_cpu_s": cpu_speed, "counts": counts}


if __name__ == "__main__":
    main()
