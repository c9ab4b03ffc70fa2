# Analysis: one tidy table of all runs, the scaling-law fits, the figures.

FIT_TABLE_NAMES = ["single_variable", "heldout_error", "params", "critical", "correlation", "which_method",
                   "which_model"]
FIT_TABLES = expand(f"{RESULTS}/fits/{{name}}.{{ext}}", name=FIT_TABLE_NAMES, ext=["csv", "md"])
FIGURE_NAMES = {
    "fig01_single_variable": "Fig 1: loss vs finetuning data, single-variable fit per model size.",
    "fig02_model_size": "Fig 2: joint multiplicative fit, model size x finetuning data.",
    "fig03_pretrain_data": "Fig 3: joint multiplicative fit, pretraining data x finetuning data.",
    "fig04_pet_size": "Fig 4: joint multiplicative fit, PET size x finetuning data.",
    "fig05_critical_size": "Fig 5: critical finetuning-data size between methods.",
    "fig06_zero_shot": "Fig 6: zero-shot translation after finetuning, by model size.",
    "fig07_metric_model_size": "Fig 7: BLEU, chrF and ROUGE-L against model size.",
    "fig08_metric_pretrain_data": "Fig 8: BLEU, chrF and ROUGE-L against pretraining data.",
    "fig09_metric_pet_size": "Fig 9: BLEU, chrF and ROUGE-L against PET size.",
    "fig10_pretraining": "Fig 10: pretraining loss vs model size.",
    "fig11_few_shot": "Few-shot prompting of finetuned and base models.",
    "fig12_which_model": "Which base model? Predicted vs observed loss at the largest Df.",
    "fig13_few_shot_pretrain_data": "Few-shot prompting against pretraining data.",
}
FIGURES = expand(f"{RESULTS}/figures/{{name}}.{{ext}}", name=FIGURE_NAMES, ext=["png", "pdf"])


rule aggregate:
    input:
        evals=[f"{run_dir(c.id, s)}/eval.json" for c, s in all_runs()],
        summaries=[f"{run_dir(c.id, s)}/train.json" for c, s in all_runs()],
        pretrain=[f"{pretrain_dir(*run)}" for run in PRETRAIN_RUNS.values()],
        transfers=[f"{run_dir(c.id, s)}/transfer.json" for c, s in transfer_runs()],
        base_transfers=[f"{RESULTS}/base_transfer/{task}/{model}-{tokens}tok.json"
                        for task, model, tokens in grid.base_transfer_runs(config, CONDITIONS)],
    output:
        metrics=f"{RESULTS}/metrics.csv",
        mean=f"{RESULTS}/metrics_mean.csv",
        pretrain=f"{RESULTS}/pretrain.csv",
        base_transfer=f"{RESULTS}/base_transfer.csv",
    params:
        runs=[{"task": c.task, "family": c.family, "model": c.model, "pretrain_tokens": c.pretrain_tokens,
               "method": c.method, "pet_size": c.pet_size, "finetune_examples": c.finetune_examples,
               "seed": s, "axes": sorted(c.axes), "transfer": has_transfer(c)} for c, s in all_runs()],
        pretrain_runs=list(PRETRAIN_RUNS.values()),
        base_transfer_runs=[{"task": task, "family": config["tasks"][task]["family"], "model": model,
                             "pretrain_tokens": tokens} for task, model, tokens in grid.base_transfer_runs(config, CONDITIONS)],
    log:
        f"{LOGS}/analysis/aggregate.log",
    benchmark:
        f"{BENCH}/analysis/aggregate.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/aggregate.py"


rule fit:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        pretrain=f"{RESULTS}/pretrain.csv",
    output:
        FIT_TABLES,
        json=f"{RESULTS}/fits/fits.json",
    params:
        options=config["analysis"],
    log:
        f"{LOGS}/analysis/fit.log",
    benchmark:
        f"{BENCH}/analysis/fit.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/fit.py"


rule figures:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        pretrain=f"{RESULTS}/pretrain.csv",
        fits=f"{RESULTS}/fits/fits.json",
        base_transfer=f"{RESULTS}/base_transfer.csv",
    output:
        [report(f"{RESULTS}/figures/{name}.png", caption=f"../report/{name}.rst", category="Figures")
         for name in FIGURE_NAMES],
        expand(f"{RESULTS}/figures/{{name}}.pdf", name=FIGURE_NAMES),
    params:
        options=config["analysis"],
    log:
        f"{LOGS}/analysis/figures.log",
    benchmark:
        f"{BENCH}/analysis/figures.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/figures.py"
