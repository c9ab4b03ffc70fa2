"""Raw pretraining text of one family, from the configured source."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale.data import sources  # noqa: E402

p = snakemake.params
source = sources.get_source(p.source, p.seed)
splits = sources.pretrain_splits(source, snakemake.wildcards.family, p.languages, p.lines)
for split, lines in splits.items():
    sources.write_lines(lines, Path(snakemake.output[split]))
    print(f"{split}: {len(lines)} lines")
