"""Raw pretraining text of one family, from the configured source, with a manifest.

Streamed: an hf or local source's lines are read as they are written (the synthetic source
shuffles its lines, so it holds them). Written under temporary names and renamed into place with
manifest.json (lines and sha256 of each split, which datasets or files were read), so nothing
half-written looks complete. A data problem stops the job with one line, in the log and on the
terminal.
"""

from ftscale.runtime.jobs import log_to_file

terminal = log_to_file(snakemake.log[0])
from ftscale.config import schema_default  # noqa: E402
from ftscale.data import sources  # noqa: E402

p, family = snakemake.params, snakemake.wildcards.family
source = sources.get_source(p.source, p.seed, p.data)
# a param only where the config changes it
val_share = getattr(p, "pretrain_val_share", None) or schema_default("data", "pretrain_val_share")


def write() -> dict:
    splits = sources.pretrain_splits(source, family, p.languages, p.lines, val_share)
    outputs = {split: (snakemake.output[split], lines) for split, lines in splits.items()}
    describe = lambda: {"family": family, "languages": p.languages, **source.manifest()}  # noqa: E731
    return sources.write_outputs(outputs, sources.write_lines, snakemake.output.manifest, describe)


manifest = sources.read_or_stop(f"pretraining corpus {family}", write, terminal)
for split, entry in manifest["files"].items():
    print(f"{split}: {entry['rows']} lines, sha256 {entry['sha256'][:12]}")
