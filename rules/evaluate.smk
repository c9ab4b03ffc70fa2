# Evaluation of each finetuned run: test loss, greedy generation, BLEU/chrF or ROUGE-L.


rule evaluate:
    input:
        base=base_checkpoint,
        checkpoint=f"{RESULTS}/finetune/{{condition}}/seed{{seed}}/checkpoint",
        summary=f"{RESULTS}/finetune/{{condition}}/seed{{seed}}/train.json",
        test=lambda wc: f"{RESULTS}/data/tokens/{condition_of(wc).task}/test",
        references=lambda wc: f"{RESULTS}/data/raw/{condition_of(wc).task}/test.jsonl",
        tokenizer=lambda wc: f"{RESULTS}/data/tokenizer/{condition_of(wc).family}/tokenizer.json",
    output:
        f"{RESULTS}/finetune/{{condition}}/seed{{seed}}/eval.json",
    params:
        task_type=lambda wc: config["tasks"][condition_of(wc).task]["type"],
        method=lambda wc: condition_of(wc).method,
        max_source=lambda wc: config["tasks"][condition_of(wc).task]["max_source_tokens"],
        max_target=lambda wc: config["tasks"][condition_of(wc).task]["max_target_tokens"],
        max_new_tokens=config["evaluate"]["max_new_tokens"],
        batch_size=config["evaluate"]["batch_size"],
    threads: config["finetune"]["threads"]
    resources:
        **resources_of(evaluate_resources),
    group:
        "run"
    log:
        f"{LOGS}/evaluate/{{condition}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{condition}}/seed{{seed}}.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/evaluate.py"
