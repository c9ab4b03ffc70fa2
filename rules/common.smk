# The config expanded into the study grid (one source of truth: ftscale.grid), and the small input
# functions the rules share.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from ftscale import config as study_config, grid  # noqa: E402

try:
    study_config.validate(config)
except study_config.ConfigError as error:
    sys.exit(f"Config error: {error}")

RESULTS = f"results/{config['study']}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
CONDITIONS = grid.expand_conditions(config)
PRETRAIN_RUNS = grid.pretrain_runs(config, CONDITIONS)
SEEDS = grid.seeds(config)


wildcard_constraints:
    family=r"[A-Za-z0-9_]+",
    task=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_.]+",
    tokens=r"\d+",
    seed=r"\d+",
    split=r"train|dev|test",
    condition=r"[A-Za-z0-9_]+/[A-Za-z0-9_.]+-\d+tok/(fmt|prompt-\d+|lora-\d+)/df\d+",


def task_of(wildcards):
    return config["tasks"][wildcards.task]


def condition_of(wildcards):
    return CONDITIONS[wildcards.condition]


def pretrain_dir(family, model, tokens):
    return f"{RESULTS}/pretrain/{grid.pretrain_id(family, model, tokens)}"


def run_dir(condition_id, seed):
    return f"{RESULTS}/finetune/{condition_id}/seed{seed}"


def resume_path(kind, run_id):
    """Resumable training state: outside the declared outputs, which Snakemake clears on rerun."""
    return f"{RESULTS}/.resume/{kind}/{run_id}.pt"


def task_data_params(wildcards):
    """Only the task keys that change its raw data (so changing Df does not regenerate data)."""
    task = task_of(wildcards)
    keys = ("type", "source_lang", "target_lang", "languages", "train_examples", "dev_examples", "test_examples")
    return {k: task[k] for k in keys if k in task}


def finetune_params(wildcards):
    c = condition_of(wildcards)
    task = config["tasks"][c.task]
    method = config["finetune"]["methods"][c.method]
    return {
        "method": c.method,
        "pet_size": c.pet_size,
        "learning_rate": method["learning_rate"],
        "batch_size": method["batch_size"],
        "parameter_scaling": config["finetune"]["parameter_scaling"],
        "finetune_examples": c.finetune_examples,
        "max_steps": config["finetune"]["max_steps"],
        "max_epochs": config["finetune"]["max_epochs"],
        "eval_every": config["finetune"]["eval_every"],
        "max_source": task["max_source_tokens"],
        "max_target": task["max_target_tokens"],
        "seed": config["seed"] + int(wildcards.seed),
    }


def all_runs():
    """(condition, seed) of every finetuning run, in grid order."""
    return [(c, seed) for c in CONDITIONS.values() for seed in SEEDS]


def base_checkpoint(wildcards):
    c = condition_of(wildcards)
    return pretrain_dir(c.family, c.model, c.pretrain_tokens)
