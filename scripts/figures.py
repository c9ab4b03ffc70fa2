"""Draw the paper's figures from the study's runs and fits (`ftscale analyze` runs the same function
on any runs table)."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.figures import files  # noqa: E402
from ftscale.outputs import FIGURES  # noqa: E402

drawn = {Path(path).stem for path in snakemake.output}  # the rule's figures (rules/analysis.smk)

files.figure_files(
    snakemake.input.metrics,
    snakemake.input.pretrain,
    Path(snakemake.input.fits).parent,
    Path(snakemake.output[0]).parent,
    snakemake.input.base_transfer,
    skip={name: "no data in this study" for name in FIGURES if name not in drawn},
)
