"""Peak memory of tokenizing a pretraining corpus (rule tokenize_pretrain), which streams: it should be
flat in the corpus size (prints figures, merges them into results/bench/summary.json; no assertions).

A synthetic corpus of --sizes-mb megabytes (lines of 5-40 words from a 5,000-word vocabulary) is
tokenized the way scripts/tokenize_pretrain.py does it (tokens.text_lines into
tokens.write_pretrain_stream) in a fresh process; its peak RSS (getrusage ru_maxrss) and time:
- tokenize_peak_rss_mb: {size_mb: peak RSS in MB}, tokenize_mb_per_s: {size_mb: corpus MB per second}.
Before the stream, the job held the whole text, its lines and their token ids as Python lists: many
times the corpus. Defaults 1,024 and 4,096 MB (about 6 GB of disk in a temporary directory).

Usage: .venv/bin/python bench/bench_tokenize.py [--sizes-mb 1024 4096] [--quick]
"""

from __future__ import annotations

import argparse
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
from ftscale.data import tokens  # noqa: E402

TOKENIZE = """
import sys
from pathlib import Path
from ftscale.data import tokens
tokenizer = tokens.load_tokenizer(sys.argv[1])
print(tokens.write_pretrain_stream(tokenizer, tokens.text_lines(sys.argv[2]), Path(sys.argv[3])))
"""


def write_corpus(path: Path, megabytes: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocabulary = [f"w{i:04d}" for i in range(5000)]
    lines = [" ".join(rng.choices(vocabulary, k=rng.randint(5, 40))) for _ in range(20000)]
    block = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as f:
        for _ in range(-(-megabytes * 2**20 // len(block))):
            f.write(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--quick", action="store_true", help="1 and 2 MB (the tests' run)")
    args = parser.parse_args()
    if args.quick:
        args.sizes_mb = [1, 2]
    peak, speed = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-tokenize-") as scratch:
        scratch = Path(scratch)
        write_corpus(scratch / "sample.txt", 4)
        tokenizer = tokens.train_tokenizer(list(tokens.text_lines(scratch / "sample.txt")), 8000)
        tokenizer.save(str(scratch / "tokenizer.json"))
        for megabytes in args.sizes_mb:
            corpus = scratch / f"corpus{megabytes}.txt"
            write_corpus(corpus, megabytes)
            start = time.perf_counter()
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    TOKENIZE,
                    str(scratch / "tokenizer.json"),
                    str(corpus),
                    str(scratch / f"stream{megabytes}"),
                ],
                env={"PYTHONPATH": str(ROOT / "src")},
                stdout=subprocess.PIPE,
                text=True,
            )
            count = int(child.stdout.read())
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak (RUSAGE_CHILDREN: all so far)
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - start
            if child.returncode:
                sys.exit(f"tokenizing {corpus} failed (exit {child.returncode})")
            peak[megabytes] = round(usage.ru_maxrss / 1024, 1)
            speed[megabytes] = round(corpus.stat().st_size / 2**20 / seconds, 2)
            print(
                f"{megabytes:6d} MB corpus: {count:,} tokens, peak RSS {peak[megabytes]:,.0f} MB, "
                f"{speed[megabytes]} MB/s",
                flush=True,
            )
            corpus.unlink()
            for leftover in (scratch / f"stream{megabytes}").iterdir():
                leftover.unlink()
    print(f"merged into {bench_summary.merge({'tokenize_peak_rss_mb': peak, 'tokenize_mb_per_s': speed})}")


if __name__ == "__main__":
    main()
