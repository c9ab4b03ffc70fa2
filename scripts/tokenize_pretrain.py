"""Tokenize one family's pretraining text once into memory-mappable token streams."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import common, tokens  # noqa: E402

tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer)
for split in ("train", "val"):  # streamed: memory does not grow with the corpus
    count = tokens.write_pretrain_stream(
        tokenizer, common.text_lines(snakemake.input[split]), Path(snakemake.output[split])
    )
    print(f"{split}: {count} tokens")
