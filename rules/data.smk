# Data: raw splits from the configured source, a BPE tokenizer per family, then everything
# tokenized once into arrays that later jobs memory-map. Each job's memory, runtime and CPUs come
# from the config (ftscale.plan.data_jobs, through data_resources in rules/common.smk).
#
# data.source picks the source (ftscale.data.sources): synthetic, hf (Hugging Face datasets named
# under data.hf) or local (the user's files under data.local). Each raw-data job gets only its own
# part of data.<source> as a parameter, so changing one task's dataset reruns that task alone; for
# local files the files are inputs too. Nothing here reads a dataset while the DAG is built: an hf
# source touches the network only inside its jobs.
from ftscale.data.common import files_of, zero_shot_direction  # noqa: E402

DATA_SOURCE = config["data"]["source"]
SOURCE_OPTIONS = config["data"].get(DATA_SOURCE, {})
TOKENIZER_SAMPLE = config["data"]["tokenizer_sample_lines"]


def source_part(**parts):
    """The slice of data.<source> one job reads, shaped like the config's `data` section. The
    synthetic source reads no datasets: only its options, and none when it has none (so a study
    without them keeps the params its data jobs ran with)."""
    keep = {k: SOURCE_OPTIONS[k] for k in ("summarization_prefix",) if k in SOURCE_OPTIONS}
    if DATA_SOURCE == "synthetic":
        return {DATA_SOURCE: keep} if keep else {}
    return {DATA_SOURCE: keep | parts}


def pretrain_source(wildcards):
    languages = config["families"][wildcards.family]["languages"]
    return source_part(pretrain={lang: SOURCE_OPTIONS.get("pretrain", {}).get(lang) for lang in languages})


def task_source(wildcards):
    return source_part(tasks={wildcards.task: SOURCE_OPTIONS.get("tasks", {}).get(wildcards.task)})


def zero_shot_source(wildcards):
    spec = SOURCE_OPTIONS.get("zero_shot", {}).get(wildcards.task, {}).get(wildcards.lang)
    return source_part(zero_shot={wildcards.task: {wildcards.lang: spec}})


def local_inputs(part_of):
    """The user's files a job reads (local source only): inputs, so an edited file reruns the job."""
    def files(wildcards):
        if DATA_SOURCE != "local":
            return []
        part = part_of(wildcards)["local"]
        specs = [spec for key in ("pretrain", "tasks", "zero_shot") for value in part.get(key, {}).values()
                 for spec in (value.values() if key != "pretrain" and isinstance(value, dict) else [value])
                 if spec is not None]
        return [f for spec in specs for f in files_of(spec)]
    return files


rule pretrain_corpus:
    input:
        local_inputs(pretrain_source),
    output:
        train=f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
        val=f"{RESULTS}/data/raw/pretrain_{{family}}/val.txt",
        manifest=f"{RESULTS}/data/raw/pretrain_{{family}}/manifest.json",
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        lines=config["data"]["pretrain_lines"],
        languages=lambda wc: config["families"][wc.family]["languages"],
        data=pretrain_source,
        **changed_options("data", ["pretrain_val_share"]),
    resources:
        **data_resources("pretrain_corpus"),
    log:
        f"{LOGS}/data/pretrain_corpus_{{family}}.log",
    benchmark:
        f"{BENCH}/data/pretrain_corpus_{{family}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/pretrain_corpus.py"


rule task_data:
    input:
        local_inputs(task_source),
    output:
        train=f"{RESULTS}/data/raw/{{task}}/train.jsonl",
        dev=f"{RESULTS}/data/raw/{{task}}/dev.jsonl",
        test=f"{RESULTS}/data/raw/{{task}}/test.jsonl",
        manifest=f"{RESULTS}/data/raw/{{task}}/manifest.json",
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        task=task_data_params,
        data=task_source,
    resources:
        **data_resources("task_data"),
    log:
        f"{LOGS}/data/task_data_{{task}}.log",
    benchmark:
        f"{BENCH}/data/task_data_{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/task_data.py"


rule tokenizer:
    wildcard_constraints:
        family=PRETRAINING_FAMILIES,
    input:
        f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
    output:
        tokenizer_path(),
    params:
        vocab_size=config["data"]["tokenizer_vocab_size"],
        # only when set: a study without it keeps the params its tokenizers were trained with
        **({"sample_lines": TOKENIZER_SAMPLE} if TOKENIZER_SAMPLE is not None else {}),
    resources:
        **data_resources("tokenizer"),
    log:
        f"{LOGS}/data/tokenizer_{{family}}.log",
    benchmark:
        f"{BENCH}/data/tokenizer_{{family}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenizer.py"


rule tokenize_pretrain:
    input:
        tokenizer=tokenizer_path(),
        train=f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
        val=f"{RESULTS}/data/raw/pretrain_{{family}}/val.txt",
    output:
        train=directory(f"{RESULTS}/data/tokens/pretrain_{{family}}/train"),
        val=directory(f"{RESULTS}/data/tokens/pretrain_{{family}}/val"),
    threads: data_threads("tokenize_pretrain")
    resources:
        **data_resources("tokenize_pretrain"),
    log:
        f"{LOGS}/data/tokenize_pretrain_{{family}}.log",
    benchmark:
        f"{BENCH}/data/tokenize_pretrain_{{family}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenize_pretrain.py"


rule tokenize_task:
    input:
        tokenizer=lambda wc: tokenizer_path(task_of(wc)["family"]),
        splits=expand(f"{RESULTS}/data/raw/{{{{task}}}}/{{split}}.jsonl", split=["train", "dev", "test"]),
    output:
        directory(expand(f"{RESULTS}/data/tokens/{{{{task}}}}/{{split}}", split=["train", "dev", "test"])),
    threads: data_threads("tokenize_task")
    resources:
        **data_resources("tokenize_task"),
    log:
        f"{LOGS}/data/tokenize_task_{{task}}.log",
    benchmark:
        f"{BENCH}/data/tokenize_task_{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenize_task.py"


# Zero-shot sets (evaluate.transfer): a translation task's target language from source languages
# it is never finetuned on; test records only, tokenized once like the task's own splits.
rule zero_shot_data:
    input:
        local_inputs(zero_shot_source),
    output:
        records=f"{RESULTS}/data/raw/{{task}}/zero_shot_{{lang}}.jsonl",
        manifest=f"{RESULTS}/data/raw/{{task}}/zero_shot_{{lang}}.manifest.json",
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        data=zero_shot_source,
        task=lambda wc: zero_shot_direction(task_of(wc), wc.lang) | {"test_examples": TRANSFER["zero_shot_examples"]},
    resources:
        **data_resources("zero_shot_data"),
    log:
        f"{LOGS}/data/zero_shot_data_{{task}}_{{lang}}.log",
    benchmark:
        f"{BENCH}/data/zero_shot_data_{{task}}_{{lang}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/zero_shot_data.py"


rule tokenize_zero_shot:
    input:
        tokenizer=lambda wc: tokenizer_path(task_of(wc)["family"]),
        splits=[f"{RESULTS}/data/raw/{{task}}/zero_shot_{{lang}}.jsonl"],
    output:
        directory(f"{RESULTS}/data/tokens/{{task}}/zero_shot_{{lang}}"),
    threads: data_threads("tokenize_zero_shot")
    resources:
        **data_resources("tokenize_zero_shot"),
    log:
        f"{LOGS}/data/tokenize_zero_shot_{{task}}_{{lang}}.log",
    benchmark:
        f"{BENCH}/data/tokenize_zero_shot_{{task}}_{{lang}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenize_task.py"
