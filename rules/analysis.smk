# Analysis: one tidy table of all runs, the scaling-law fits, the figures.

# The names' one home is ftscale.outputs (light: no matplotlib or scipy at every start); the
# figures' captions are report/<name>.rst.
from ftscale.outputs import TABLES as FIT_TABLE_NAMES, study_figures  # noqa: E402

# only figures with data: the zero-shot one where the study has zero-shot sets, the few-shot ones
# where it has few-shot prompts (their base models' baseline goes with them)
FIGURE_NAMES = study_figures(
    zero_shot=bool(grid.zero_shot_sets(config, CONDITIONS)), few_shot=bool(grid.base_transfer_runs(config, CONDITIONS))
)

FIT_TABLES = expand(f"{RESULTS}/fits/{{name}}.{{ext}}", name=FIT_TABLE_NAMES, ext=["csv", "md"])
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
        options=study_config.analysis_params(config["analysis"]),
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
        options=study_config.analysis_params(config["analysis"]),
    log:
        f"{LOGS}/analysis/figures.log",
    benchmark:
        f"{BENCH}/analysis/figures.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/figures.py"
