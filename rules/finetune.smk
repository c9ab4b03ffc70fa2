# Finetuning: one job per condition and seed; FMT, prompt tuning or LoRA from a shared base.


def finetune_inputs(wildcards):
    """The base model and the task's tokenized train and dev splits. One function, not one per
    input: Snakemake's cost of calling a function is per job."""
    task = condition_of(wildcards).task
    splits = {split: f"{RESULTS}/data/tokens/{task}/{split}" for split in ("train", "dev")}
    return {"base": base_checkpoint(wildcards), **splits}


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        checkpoint=directory(f"{run_dir()}/checkpoint"),
        summary=f"{run_dir()}/train.json",
    params:
        run=finetune_params,
        resume=lambda wc: resume_path("finetune", f"{wc.condition}/seed{wc.seed}"),
    threads: config["finetune"]["threads"]
    resources:
        **resources_of("finetune", finetune_plan),
    retries: segment_retries("finetune")
    group:
        run_group
    log:
        f"{LOGS}/finetune/{{condition}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/finetune/{{condition}}/seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/finetune.py"
