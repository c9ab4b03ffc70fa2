"""Tokenize one task's splits once into memory-mappable arrays."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import common, tokens  # noqa: E402

tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer)
for raw, out in zip(snakemake.input.splits, snakemake.output):
    records = common.read_jsonl(Path(raw))
    tokens.write_task_split(tokenizer, records, Path(out))
    print(f"{raw} -> {out}: {len(records)} examples")
