# Data: raw splits from the configured source, a BPE tokenizer per family, then everything
# tokenized once into arrays that later jobs memory-map.


rule pretrain_corpus:
    output:
        train=f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
        val=f"{RESULTS}/data/raw/pretrain_{{family}}/val.txt",
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        lines=config["data"]["pretrain_lines"],
        languages=lambda wc: config["families"][wc.family]["languages"],
    log:
        f"{LOGS}/data/pretrain_corpus_{{family}}.log",
    benchmark:
        f"{BENCH}/data/pretrain_corpus_{{family}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/pretrain_corpus.py"


rule task_data:
    output:
        expand(f"{RESULTS}/data/raw/{{{{task}}}}/{{split}}.jsonl", split=["train", "dev", "test"]),
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        task=task_data_params,
    log:
        f"{LOGS}/data/task_data_{{task}}.log",
    benchmark:
        f"{BENCH}/data/task_data_{{task}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/task_data.py"


rule tokenizer:
    input:
        f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
    output:
        f"{RESULTS}/data/tokenizer/{{family}}/tokenizer.json",
    params:
        vocab_size=config["data"]["tokenizer_vocab_size"],
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
        tokenizer=f"{RESULTS}/data/tokenizer/{{family}}/tokenizer.json",
        train=f"{RESULTS}/data/raw/pretrain_{{family}}/train.txt",
        val=f"{RESULTS}/data/raw/pretrain_{{family}}/val.txt",
    output:
        train=directory(f"{RESULTS}/data/tokens/pretrain_{{family}}/train"),
        val=directory(f"{RESULTS}/data/tokens/pretrain_{{family}}/val"),
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
        tokenizer=lambda wc: f"{RESULTS}/data/tokenizer/{task_of(wc)['family']}/tokenizer.json",
        splits=expand(f"{RESULTS}/data/raw/{{{{task}}}}/{{split}}.jsonl", split=["train", "dev", "test"]),
    output:
        directory(expand(f"{RESULTS}/data/tokens/{{{{task}}}}/{{split}}", split=["train", "dev", "test"])),
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
    output:
        f"{RESULTS}/data/raw/{{task}}/zero_shot_{{lang}}.jsonl",
    params:
        source=config["data"]["source"],
        seed=config["seed"],
        task=lambda wc: {"type": "translation", "source_lang": wc.lang, "target_lang": task_of(wc)["target_lang"],
                         "test_examples": TRANSFER["zero_shot_examples"]},
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
        tokenizer=lambda wc: f"{RESULTS}/data/tokenizer/{task_of(wc)['family']}/tokenizer.json",
        splits=[f"{RESULTS}/data/raw/{{task}}/zero_shot_{{lang}}.jsonl"],
    output:
        directory(f"{RESULTS}/data/tokens/{{task}}/zero_shot_{{lang}}"),
    log:
        f"{LOGS}/data/tokenize_zero_shot_{{task}}_{{lang}}.log",
    benchmark:
        f"{BENCH}/data/tokenize_zero_shot_{{task}}_{{lang}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenize_task.py"
