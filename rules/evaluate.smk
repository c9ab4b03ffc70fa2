# Evaluation of each finetuned run: test loss, greedy generation, the metrics of evaluate.metrics
# (BLEU/chrF/BLEURT or ROUGE-L); every generation kept in samples.jsonl (ftscale.evaluate.samples).
from ftscale.evaluate.metrics import learned_metrics  # noqa: E402


def target_language(task):
    """A translation task's target language: it picks the BLEU tokenizer (ftscale.evaluate.metrics). None
    for summarization, whose references each carry their own `lang`."""
    return config["tasks"][task].get("target_lang")


def evaluation_inputs(wildcards):
    """The inputs of a run's evaluation that its condition decides: the base model, the task's test
    split (tokenized, and its references), the family's tokenizer, and the fetched checkpoint of each
    learned metric it computes (rule fetch_scorer). One function, not one per input: Snakemake's cost
    of calling a function is per job."""
    c = condition_of(wildcards)
    task_type = config["tasks"][c.task]["type"]
    return {m: f"{RESULTS}/scorers/{m}" for m in learned_metrics(config["evaluate"]["metrics"], task_type)} | {
        "base": base_checkpoint(wildcards),
        "test": f"{RESULTS}/data/tokens/{c.task}/test",
        "references": f"{RESULTS}/data/raw/{c.task}/test.jsonl",
        "tokenizer": tokenizer_path(c.family),
    }


rule evaluate:
    input:
        unpack(evaluation_inputs),
        checkpoint=f"{run_dir()}/checkpoint",
        summary=f"{run_dir()}/train.json",
    output:
        eval=f"{run_dir()}/eval.json",
        samples=f"{run_dir()}/samples.jsonl",   # every generation
    params:
        task_type=lambda wc: config["tasks"][condition_of(wc).task]["type"],
        target_lang=lambda wc: target_language(condition_of(wc).task),
        method=lambda wc: condition_of(wc).method,
        max_source=lambda wc: config["tasks"][condition_of(wc).task]["max_source_tokens"],
        max_target=lambda wc: config["tasks"][condition_of(wc).task]["max_target_tokens"],
        max_new_tokens=config["evaluate"]["max_new_tokens"],
        batch_size=evaluation_batch_size(evaluate_plan),
        **changed_options("evaluate", ["weights_dtype"]),
        metrics=config["evaluate"]["metrics"],
        bleurt_batch_size=config["evaluate"]["bleurt"]["batch_size"],
    threads: config["finetune"]["threads"]
    resources:
        **resources_of("evaluate", evaluate_plan),
    group:
        run_group
    log:
        f"{LOGS}/evaluate/{{condition}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{condition}}/seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"


# Zero- and few-shot translation, few-shot summarization (evaluate.transfer): the runs of the chosen
# axes, and the base models they start from as the few-shot baseline. Shares the run's allocation (group "run", common.smk run_group).
rule transfer:
    input:
        unpack(lambda wc: transfer_data(wc) | {"base": base_checkpoint(wc)}),
        checkpoint=f"{run_dir()}/checkpoint",
        summary=f"{run_dir()}/train.json",
    output:
        f"{run_dir()}/transfer.json",
    params:
        **transfer_params,
        **changed_options("evaluate", ["weights_dtype"]),
        target_lang=lambda wc: target_language(transfer_task(wc)),
        method=lambda wc: condition_of(wc).method,
        languages=lambda wc: zero_shot_languages(condition_of(wc).task),
        batch_size=evaluation_batch_size(transfer_plan),
    threads: config["finetune"]["threads"]
    resources:
        **resources_of("transfer", transfer_plan),
    group:
        run_group
    log:
        f"{LOGS}/transfer/{{condition}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/transfer/{{condition}}/seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/transfer.py"


rule base_transfer:
    input:
        unpack(transfer_data),
        base=lambda wc: pretrain_dir(task_of(wc)["family"], wc.model, wc.tokens),
    output:
        f"{RESULTS}/base_transfer/{{task}}/{{model}}-{{tokens}}tok.json",
    params:
        **transfer_params,
        **changed_options("evaluate", ["weights_dtype"]),
        target_lang=lambda wc: target_language(transfer_task(wc)),
        method="base",
        languages=[],
        batch_size=evaluation_batch_size(base_transfer_plan),
    threads: config["finetune"]["threads"]
    resources:
        **resources_of("base_transfer", base_transfer_plan),
    log:
        f"{LOGS}/base_transfer/{{task}}/{{model}}-{{tokens}}tok.log",
    benchmark:
        f"{BENCH}/base_transfer/{{task}}/{{model}}-{{tokens}}tok.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/transfer.py"
