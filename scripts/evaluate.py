"""Evaluate one finetuned run: test loss, greedy generation and its metrics (evaluate.metrics)."""

from ftscale.runtime.jobs import log_to_file

log_to_file(snakemake.log[0])
from ftscale.evaluate.metrics import LEARNED  # noqa: E402
from ftscale.runtime import worker  # noqa: E402

i, p = snakemake.input, snakemake.params
worker.run(
    "ftscale.evaluate.decode:run_job",
    log=snakemake.log[0],
    threads=snakemake.threads,
    base=i.base,
    checkpoint=i.checkpoint,
    summary=i.summary,
    test=i.test,
    references=i.references,
    tokenizer=i.tokenizer,
    out=snakemake.output.eval,
    samples=snakemake.output.samples,
    task_type=p.task_type,
    method=p.method,
    max_source=p.max_source,
    max_target=p.max_target,
    max_new_tokens=p.max_new_tokens,
    batch_size=p.batch_size,
    target_lang=p.target_lang,
    weights_dtype=getattr(p, "weights_dtype", None),  # a param only where the config changes it
    metrics=p.metrics,
    scorers={name: getattr(i, name) for name in LEARNED if name in i.keys()},  # fetched checkpoints (rule fetch_scorer)
    bleurt_batch_size=p.bleurt_batch_size,
)
if snakemake.config["tracking"]["mlflow"]:  # the run's final metrics beside its curves (MLflow imported only then)
    import json
    from pathlib import Path

    from ftscale.runtime import tracking

    run = tracking.finetune_run(snakemake.wildcards.condition, snakemake.wildcards.seed)
    tracking.log_final(tracking.spec(snakemake.config, run), json.loads(Path(snakemake.output.eval).read_text()))
