"""Train the byte-level BPE tokenizer of one family on its pretraining text, read as a stream (the
first data.tokenizer_sample_lines lines where set): memory holds the trainer's word counts, not the text."""

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import common, tokens  # noqa: E402

sample = snakemake.params.get("sample_lines")
tokenizer = tokens.train_tokenizer(common.text_lines(snakemake.input[0]), snakemake.params.vocab_size, sample)
tokenizer.save(snakemake.output[0])
print(
    f"trained on {'every line' if sample is None else f'the first {sample} lines'}: vocabulary {tokenizer.get_vocab_size()}"
)
