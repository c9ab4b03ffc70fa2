"""Tokenize one task's splits once into memory-mappable arrays, streamed: records are read and
encoded a chunk at a time (ftscale.data.tokens.write_task_split)."""

import os
from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import common, tokens  # noqa: E402

os.environ.update(tokens.encoder_threads(snakemake.threads))  # the planned CPUs: the rule's threads
tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer)
for raw, out in zip(snakemake.input.splits, snakemake.output):
    count = tokens.write_task_split(tokenizer, common.iter_jsonl(Path(raw)), Path(out))
    print(f"{raw} -> {out}: {count} examples")
