"""The per-byte figures of ftscale.plan.data_jobs, measured: each data stage's own code on the
synthetic source at two sizes, in a fresh process each, its peak RSS (wait4 ru_maxrss) and wall time;
the slope between the two sizes is what the planner multiplies a job's input bytes by (prints them
beside the planner's constants, merges them into results/bench/summary.json; no assertions).

- data_stage_rss_per_byte: {stage: MB of peak RSS per MB of input}
- data_stage_mb_per_s: {stage: MB of input per second, from the difference in time}
- data_stage_baseline_mb: {stage: the RSS the line extrapolates to at no input}
Stages: pretrain_corpus (lines per language; pretrain_corpus_local: that corpus read back as a local
source's file, the planner's READ_BYTES_PER_SECOND), tokenizer and tokenize_pretrain (on that corpus),
task_data and tokenize_task (train examples of the toy's first task). Defaults: 24,000 and 96,000
lines, 20,000 and 80,000 examples (about 30 MB, a minute on one core).

Usage: .venv/bin/python bench/bench_data_stages.py [--lines 24000 96000] [--examples 20000 80000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from ftscale.plan import data_jobs  # noqa: E402

# one stage of the scripts' code paths (scripts/*.py) on files in the working directory
STAGE = """
import sys, yaml
from pathlib import Path
from ftscale import config
from ftscale.data import common, sources, tokens
stage, n = sys.argv[1], int(sys.argv[2])
val_share = config.schema_default("data", "pretrain_val_share")
if stage == "pretrain_corpus":
    splits = sources.pretrain_splits(sources.get_source("synthetic", 0, {}), "ende", ["en", "de"], n, val_share)
    sources.write_lines(splits["train"], Path(f"corpus{n}.txt"))
elif stage == "pretrain_corpus_local":  # that corpus as a local file: the script's path for local and hf sources
    source = sources.get_source("local", 0, {"local": {"pretrain": {"en": {"path": f"corpus{n}.txt"}}}})
    lines = sources.pretrain_splits(source, "ende", ["en"], n, val_share)["train"]
    sources.write_outputs({"train": (Path(f"local{n}.txt"), lines)}, sources.write_lines, None, source.manifest)
elif stage == "tokenizer":
    tokens.train_tokenizer(common.text_lines(f"corpus{n}.txt"), 1024).save(f"tokenizer{n}.json")
elif stage == "tokenize_pretrain":
    tokenizer = tokens.load_tokenizer(f"tokenizer{n}.json")
    tokens.write_pretrain_stream(tokenizer, common.text_lines(f"corpus{n}.txt"), Path(f"stream{n}"))
else:
    toy = yaml.safe_load(open(sys.argv[3]))
    name = next(iter(toy["tasks"]))
    task = dict(toy["tasks"][name], train_examples=n, dev_examples=1, test_examples=1)
    if stage == "task_data":
        records = sources.task_splits(sources.get_source("synthetic", 0, {}), name, task)["train"]
        sources.write_jsonl(records, Path(f"task{n}.jsonl"))
    else:
        tokenizer = tokens.load_tokenizer(sys.argv[4])
        tokens.write_task_split(tokenizer, common.iter_jsonl(Path(f"task{n}.jsonl")), Path(f"split{n}"))
"""
INPUT = {
    "pretrain_corpus": "corpus{}.txt",
    "pretrain_corpus_local": "local{}.txt",
    "tokenizer": "corpus{}.txt",
    "tokenize_pretrain": "corpus{}.txt",
    "task_data": "task{}.jsonl",
    "tokenize_task": "task{}.jsonl",
}


def measure(stage: str, n: int, scratch: Path, tokenizer: str) -> tuple[float, float, float]:
    """(input MB, peak RSS MB, seconds) of one stage at size n, in a fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", STAGE, stage, str(n), str(ROOT / "config.yaml"), tokenizer],
        cwd=scratch,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{stage} at {n} failed")
    seconds = time.perf_counter() - start
    return (scratch / INPUT[stage].format(n)).stat().st_size / 1e6, usage.ru_maxrss / 1024 * 1.048576, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs=2, default=[24000, 96000])
    parser.add_argument("--examples", type=int, nargs=2, default=[20000, 80000])
    parser.add_argument("--quick", action="store_true", help="2,000/4,000 lines, 500/1,000 examples (the tests' run)")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.examples = [2000, 4000], [500, 1000]
    per_byte, speed, baseline = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        scratch = Path(scratch)
        sizes = {
            stage: args.lines
            for stage in ("pretrain_corpus", "pretrain_corpus_local", "tokenizer", "tokenize_pretrain")
        }
        sizes |= {stage: args.examples for stage in ("task_data", "tokenize_task")}
        for stage, (small, large) in sizes.items():
            (mb0, rss0, s0), (mb1, rss1, s1) = (
                measure(stage, n, scratch, str(scratch / f"tokenizer{args.lines[1]}.json")) for n in (small, large)
            )
            per_byte[stage] = round((rss1 - rss0) / (mb1 - mb0), 2)
            speed[stage] = round((mb1 - mb0) / (s1 - s0), 2)
            baseline[stage] = round(rss0 - per_byte[stage] * mb0, 1)
            held, planned_speed = data_jobs.STAGES.get(stage, (None, data_jobs.READ_BYTES_PER_SECOND))
            print(
                f"{stage:18s} {mb0:6.1f} -> {mb1:6.1f} MB: RSS {rss0:6.1f} -> {rss1:6.1f} MB, {s0:5.1f} -> {s1:5.1f} s;"
                f" {per_byte[stage]} B/B (planner {held}), {speed[stage]} MB/s (planner {planned_speed / 1e6})",
                flush=True,
            )
    figures = {"data_stage_rss_per_byte": per_byte, "data_stage_mb_per_s": speed, "data_stage_baseline_mb": baseline}
    print(json.dumps(figures))
    print(f"merged into {bench_summary.merge(figures)}")


if __name__ == "__main__":
    main()
