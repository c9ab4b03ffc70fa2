"""Zero- and few-shot translation or few-shot summarization of a finetuned run, or few-shot of a base
model (the baseline)."""

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.runtime import worker  # noqa: E402

i, p = snakemake.input, snakemake.params
finetuned = "checkpoint" in i.keys()
worker.run(
    "ftscale.evaluate.transfer:run_job",
    log=snakemake.log[0],
    threads=snakemake.threads,
    base=i.base,
    checkpoint=i.checkpoint if finetuned else None,
    summary=i.summary if finetuned else None,
    method=p.method,
    tokenizer=i.tokenizer,
    zero_shot={lang: (split, raw) for lang, split, raw in zip(p.languages, i.zero_shot, i.zero_shot_raw)},
    test=i.test,
    references=i.references,
    demos=i.demos,
    shots=p.shots,
    few_shot_examples=p.few_shot_examples,
    max_source=p.max_source,
    max_target=p.max_target,
    max_new_tokens=p.max_new_tokens,
    batch_size=p.batch_size,
    seed=p.seed,
    task_type=p.task_type,
    target_lang=p.target_lang,
    out=snakemake.output[0],
    weights_dtype=getattr(p, "weights_dtype", None),  # a param only where the config changes it
)
