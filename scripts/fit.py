"""Fit the scaling laws to the study's runs and write the paper's tables."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.runtime.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
import pandas as pd  # noqa: E402

from ftscale.analysis import tables  # noqa: E402

tables.run_analysis(pd.read_csv(snakemake.input.metrics), pd.read_csv(snakemake.input.pretrain),
                    dict(snakemake.params.options), Path(snakemake.output.json).parent)
