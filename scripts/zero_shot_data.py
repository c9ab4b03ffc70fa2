"""Raw test records of one zero-shot direction (another source language into a task's target)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))
from ftscale.jobs import log_to_file  # noqa: E402

log_to_file(snakemake.log[0])
from ftscale.data import sources  # noqa: E402

p, wc = snakemake.params, snakemake.wildcards
source = sources.get_source(p.source, p.seed)
records = source.task_records(f"{wc.task}_zero_shot_{wc.lang}", p.task, "test", p.task["test_examples"])
sources.write_jsonl(records, Path(snakemake.output[0]))
print(f"{wc.lang} -> {p.task['target_lang']}: {len(records)} records")
