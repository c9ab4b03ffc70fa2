"""Fit the scaling laws to the study's runs and write the paper's tables (`ftscale analyze` runs the
same function on any runs table)."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.analysis import runs_table  # noqa: E402

runs_table.fit_files(
    snakemake.input.metrics,
    snakemake.input.pretrain,
    dict(snakemake.params.options),
    Path(snakemake.output.json).parent,
)
