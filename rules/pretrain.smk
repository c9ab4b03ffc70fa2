# Pretraining: one checkpoint per (family, model size, token budget), shared by every condition
# that finetunes from it.


rule pretrain:
    input:
        train=f"{RESULTS}/data/tokens/pretrain_{{family}}/train",
        val=f"{RESULTS}/data/tokens/pretrain_{{family}}/val",
        tokenizer=f"{RESULTS}/data/tokenizer/{{family}}/tokenizer.json",
    output:
        directory(f"{RESULTS}/pretrain/{{family}}/{{model}}-{{tokens}}tok"),
    params:
        size=lambda wc: config["models"][wc.model],
        vocab_size=config["data"]["tokenizer_vocab_size"],
        seq_len=config["pretrain"]["seq_len"],
        batch_size=config["pretrain"]["batch_size"],
        lr_max=config["pretrain"]["lr_max"],
        lr_min=config["pretrain"]["lr_min"],
        warmup_steps=config["pretrain"]["warmup_steps"],
        parameter_scaling=config["pretrain"]["parameter_scaling"],
        seed=config["seed"],
        micro_batch_size=lambda wc: pretrain_plan(wc).micro_batch_size,   # None on the CPU: the whole batch
        resume=lambda wc: resume_path("pretrain", grid.pretrain_id(wc.family, wc.model, wc.tokens)),
    threads: config["pretrain"]["threads"]
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
