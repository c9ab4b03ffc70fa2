"""Raw train/dev/test records of one task, from the configured source."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale.data import sources  # noqa: E402

p = snakemake.params
source = sources.get_source(p.source, p.seed)
splits = sources.task_splits(source, snakemake.wildcards.task, p.task)
for (split, records), path in zip(splits.items(), snakemake.output):
    assert path.endswith(f"/{split}.jsonl"), (split, path)
    sources.write_jsonl(records, Path(path))
    print(f"{split}: {len(records)} records")
