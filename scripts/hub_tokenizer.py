"""A hub family's tokenizer: its base model's own (AutoTokenizer), saved beside where the
tokenize rules read tokenizer.json."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.data import tokens  # noqa: E402
from ftscale.train.model import base_path  # noqa: E402

model_dir = base_path(snakemake.input[0])
fmt = tokens.save_model_tokenizer(model_dir, Path(snakemake.output[0]).parent)
print(f"tokenizer of {model_dir}: prompt format {fmt}")
