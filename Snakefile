# ftscale: how LLM finetuning scales with model size, pretraining data, PET size and finetuning
# data, and which method (FMT, prompt tuning, LoRA) wins where. See README.md and STUDY.md.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# `--configfile X` replaces the toy default rather than merging into it: a study's grid is exactly
# the one its config file states. (`--config key=value` still overrides single keys.)
if not workflow.overwrite_configfiles:
    try:  # a malformed config.yaml in one line, file:line:column (Snakemake's own message names neither)
        from ftscale.config import ConfigError, read_yaml

        read_yaml(Path(workflow.basedir) / "config.yaml")
    except ModuleNotFoundError:
        pass  # no ftscale: rules/common.smk says so, in one line
    except ConfigError as error:
        sys.exit(f"Config error: {error}")

    configfile: str(Path(workflow.basedir) / "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/fetch.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/analysis.smk"


# The default target names every output the analysis reads (each run's train.json, eval.json and
# transfer.json, the base checkpoints, the few-shot baselines), not only the analysis outputs.
# Snakemake does not build the missing inputs of a job whose outputs are up to date, so without
# them a run added to the config would be built only through the params trigger, which lives in
# .snakemake/metadata: a study moved to another checkout, or run with `--rerun-triggers mtime`,
# would silently skip new runs.
rule all:
    input:
        rules.aggregate.input,
        f"{RESULTS}/metrics.csv",
        f"{RESULTS}/metrics_mean.csv",
        FIT_TABLES,
        FIGURES,
    default_target: True
