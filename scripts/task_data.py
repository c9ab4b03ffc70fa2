"""Raw train/dev/test records of one task, from the configured source, with a manifest.

The splits are written under temporary names and renamed into place with manifest.json (rows and
sha256 of each split, and which datasets or files were read), so an interrupted download leaves
nothing that looks complete. A data problem (no network for an hf dataset, a bad local file)
stops the job with one line, in the log and on the terminal.
"""

from ftscale.runtime.jobs import log_to_file

terminal = log_to_file(snakemake.log[0])
from ftscale.data import sources  # noqa: E402

p, task_name = snakemake.params, snakemake.wildcards.task
source = sources.get_source(p.source, p.seed, p.data)
splits = sources.read_or_stop(f"task {task_name}", lambda: sources.task_splits(source, task_name, p.task), terminal)
outputs = {split: (snakemake.output[split], records) for split, records in splits.items()}
manifest = sources.write_outputs(
    outputs, sources.write_jsonl, snakemake.output.manifest, lambda: {"task": task_name, **source.manifest()}
)
for split, entry in manifest["files"].items():
    print(f"{split}: {entry['rows']} records, sha256 {entry['sha256'][:12]}")
