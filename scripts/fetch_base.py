"""Fetch one base checkpoint of a hub family (a Hub model at its pinned revision, or a local
directory) and record where it is (ftscale.train.fetch)."""

import sys
from pathlib import Path

from ftscale.runtime.jobs import log_to_file

terminal = log_to_file(snakemake.log[0])
from ftscale.train.fetch import FetchError, fetch  # noqa: E402

wc = snakemake.wildcards
try:
    fetch(
        family=wc.family,
        model=wc.model,
        tokens=int(wc.tokens),
        out_dir=Path(snakemake.output[0]),
        **snakemake.params.source,
    )
except FetchError as error:  # one line, on the terminal too: the model and how to pre-fetch it
    print(f"fetch {wc.family}/{wc.model}: {error}")
    print(f"fetch {wc.family}/{wc.model}: {error}", file=terminal, flush=True)
    sys.exit(1)
