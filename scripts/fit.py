"""Fit the scaling laws to the study's runs and write the paper's tables."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
import pandas as pd  # noqa: E402

from ftscale.analysis import tables  # noqa: E402

tables.run_analysis(
    pd.read_csv(snakemake.input.metrics),
    pd.read_csv(snakemake.input.pretrain),
    dict(snakemake.params.options),
    Path(snakemake.output.json).parent,
)
