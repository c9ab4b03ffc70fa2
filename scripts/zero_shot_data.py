"""Raw test records of one zero-shot direction (another source language into a task's target),
from the configured source, with a manifest; a data problem stops the job with one line."""

from ftscale.runtime.jobs import log_to_file

terminal = log_to_file(snakemake.log[0])
from ftscale.data import sources  # noqa: E402

p, wc = snakemake.params, snakemake.wildcards
source = sources.get_source(p.source, p.seed, p.data)
records = sources.read_or_stop(
    f"zero-shot set {wc.lang} of {wc.task}",
    lambda: source.zero_shot_records(wc.task, wc.lang, p.task, p.task["test_examples"]),
    terminal,
)
manifest = sources.write_outputs(
    {"test": (snakemake.output.records, records)},
    sources.write_jsonl,
    snakemake.output.manifest,
    lambda: {"task": wc.task, "lang": wc.lang, **source.manifest()},
)
print(f"{wc.lang} -> {p.task['target_lang']}: {manifest['files']['test']['rows']} records")
