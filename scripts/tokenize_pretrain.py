"""Tokenize one family's pretraining text once into memory-mappable token streams."""

import os
from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import common, tokens  # noqa: E402

os.environ.update(tokens.encoder_threads(snakemake.threads))  # the planned CPUs: the rule's threads
tokenizer = tokens.load_tokenizer(snakemake.input.tokenizer)
for split in ("train", "val"):  # streamed: memory does not grow with the corpus
    count = tokens.write_pretrain_batches(
        tokenizer, common.text_blocks(snakemake.input[split]), Path(snakemake.output[split])
    )
    print(f"{split}: {count} tokens")
