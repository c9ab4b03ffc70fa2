"""Fetch a learned metric's checkpoint (evaluate.<metric>: a Hub model at its pinned revision, or a
local directory) and record where it is (ftscale.train.fetch.fetch_scorer)."""

import sys
from pathlib import Path

from ftscale.runtime.jobs import log_to_file

terminal = log_to_file(snakemake.log[0])
from ftscale.train.fetch import FetchError, fetch_scorer  # noqa: E402

metric = snakemake.wildcards.metric
try:
    fetch_scorer(metric=metric, out_dir=Path(snakemake.output[0]), **snakemake.params.source)
except FetchError as error:  # one line, on the terminal too: the checkpoint and how to pre-fetch it
    print(f"fetch {metric}: {error}")
    print(f"fetch {metric}: {error}", file=terminal, flush=True)
    sys.exit(1)
