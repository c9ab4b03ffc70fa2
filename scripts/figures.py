"""Draw the paper's figures from the study's runs and fits."""

from pathlib import Path

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
import pandas as pd  # noqa: E402

from ftscale.figures import paper  # noqa: E402

base_transfer = pd.read_csv(snakemake.input.base_transfer)
paper.draw_figures(
    pd.read_csv(snakemake.input.metrics),
    pd.read_csv(snakemake.input.pretrain),
    Path(snakemake.input.fits).parent,
    Path(snakemake.output[0]).parent,
    base_transfer if len(base_transfer) else None,
)
