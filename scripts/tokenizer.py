"""Train the byte-level BPE tokenizer of one family on its pretraining text."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import tokens  # noqa: E402

lines = Path(snakemake.input[0]).read_text(encoding="utf-8").splitlines()
tokenizer = tokens.train_tokenizer(lines, snakemake.params.vocab_size)
tokenizer.save(snakemake.output[0])
print(f"trained on {len(lines)} lines: vocabulary {tokenizer.get_vocab_size()}")
