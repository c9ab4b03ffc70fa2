# Pretraining: one base checkpoint per (family, model size, token budget), shared by every condition
# that finetunes from it. ftscale.plan.grid.pretrain_jobs says which run saves which checkpoint: with
# pretrain.data_axis `separate` every checkpoint is its own run (rule pretrain); with `checkpoints`
# a family's smaller budgets are intermediate checkpoints of the base model's full-corpus run, one
# rule per family (below), since a rule's outputs cannot vary in number from job to job. Either way
# a checkpoint lives at pretrain_dir(family, model, tokens), where the finetuning rules look.
PRETRAIN_JOBS = grid.pretrain_jobs(config, CONDITIONS)
PRETRAIN_INPUT = {
    "train": f"{RESULTS}/data/tokens/pretrain_{{family}}/train",
    "val": f"{RESULTS}/data/tokens/pretrain_{{family}}/val",
    "tokenizer": tokenizer_path(),
}


def pretrain_params(job):
    """The script's parameters for one run (grid.PretrainJob), its checkpoints as {tokens: directory}."""
    p = config["pretrain"]
    return {"family": job.family, "model": job.model, "tokens": job.tokens, "size": study_config.model_size(config, job.model),
            "vocab_size": config["data"]["tokenizer_vocab_size"], "seq_len": p["seq_len"],
            "batch_size": p["batch_size"], "lr_max": p["lr_max"], "lr_min": p["lr_min"],
            "warmup_steps": p["warmup_steps"], "parameter_scaling": p["parameter_scaling"], "seed": config["seed"],
            "val_windows": p["val_windows"], "log_every": p["log_every"],
            "resume": resume_path("pretrain", job.id),
            "checkpoints": {t: pretrain_dir(job.family, job.model, t) for t in job.checkpoints},
            # windows per forward pass (gradients accumulate over the batch): what fits the job's GPU
            # (ftscale.plan.sizing); None on the CPU: the whole batch at once
            "micro_batch_size": pretrain_plan(job).micro_batch_size}


def wildcard_job(wildcards):
    return grid.PretrainJob(wildcards.family, wildcards.model, int(wildcards.tokens))


rule pretrain:
    wildcard_constraints:
        family=PRETRAINING_FAMILIES,
    input:
        **PRETRAIN_INPUT,
    output:
        directory(f"{RESULTS}/pretrain/{{family}}/{{model}}-{{tokens}}tok"),
    params:
        run=lambda wc: pretrain_params(wildcard_job(wc)),
    threads: config.get("pretrain", {}).get("threads", 1)   # no pretrain section: hub families only
    resources:
        **resources_of("pretrain", pretrain_plan),
    retries: segment_retries("pretrain")
    log:
        f"{LOGS}/pretrain/{{family}}/{{model}}-{{tokens}}tok.log",
    benchmark:
        f"{BENCH}/pretrain/{{family}}/{{model}}-{{tokens}}tok.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/pretrain.py"


# The full-corpus run that saves the smaller budgets as it passes them: its checkpoints are outputs
# (preferred over rule pretrain, which has wildcards, for the same paths).
for job in [job for job in PRETRAIN_JOBS.values() if job.checkpoints]:

    rule:
        name:
            job.rule
        input:
            **{key: path.format(family=job.family) for key, path in PRETRAIN_INPUT.items()},
        output:
            directory(pretrain_dir(job.family, job.model, job.tokens)),
            checkpoints=[directory(pretrain_dir(job.family, job.model, t)) for t in job.checkpoints],
        params:
            run=pretrain_params(job),
        threads: config["pretrain"]["threads"]
        resources:
            **resources_of("pretrain", lambda wc, job=job: pretrain_plan(job)),
        retries: segment_retries("pretrain")
        log:
            f"{LOGS}/pretrain/{job.id}.log",
        benchmark:
            f"{BENCH}/pretrain/{job.id}.tsv"
        conda:
            "../envs/train.yaml"
        script:
            "../scripts/pretrain.py"
