# The config expanded into the study grid (one source of truth: ftscale.grid), and the small input
# functions the rules share.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from ftscale import config as study_config, grid, plan  # noqa: E402

# Validation also puts the config in canonical form, in place (ftscale.canonical): keys sorted at
# every level, each number written one way. Every params value below derives from it, so
# Snakemake's "params changed" (a repr() comparison) sees meaning, not formatting: a config
# re-serialised, reordered or written as JSON reruns nothing.
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
    family="|".join(config["families"]),
    task="|".join(config["tasks"]),
    model=r"[A-Za-z0-9_.]+",
    tokens=r"\d+",
    seed=r"\d+",
    split=r"train|dev|test",
    lang=r"[A-Za-z0-9_-]+",
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
        "max_steps": grid.max_steps(config, c.task, c.method),
        "max_epochs": config["finetune"]["max_epochs"],
        "eval_every": config["finetune"]["eval_every"],
        "patience": config["finetune"]["patience"],
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


# Resources for a scheduler: estimated from parameters and tokens, times a safety factor, with
# per-rule overrides in config["cluster"]. A local run ignores mem_mb/runtime beyond scheduling.
CLUSTER = {"gpus": 0, "gpu_model": None, "flops_per_second": 2.0e10, "safety_factor": 3.0,
           "min_runtime_minutes": 10, "mem_mb": {}, "runtime_minutes": {}} | config.get("cluster", {})
BASE_MEM_MB = 2500   # Python, torch, transformers and peft resident before any model


def estimate(rule, model, tokens, flops_per_token, batch_tokens):
    """mem_mb and runtime (minutes) of a job that pushes `tokens` through a model size."""
    size, params = config["models"][model], plan.model_parameters(config, model)
    weights_mb = 16 * params / 1e6                 # fp32 weights, gradients, optimiser state, a copy
    activations_mb = batch_tokens * (34 * size["model_dim"] * size["layers"]
                                     + 8 * config["data"]["tokenizer_vocab_size"]) / 1e6
    mem = BASE_MEM_MB + CLUSTER["safety_factor"] * (weights_mb + activations_mb)
    minutes = CLUSTER["safety_factor"] * flops_per_token * params * tokens / CLUSTER["flops_per_second"] / 60
    return {
        "mem_mb": CLUSTER["mem_mb"].get(rule, int(mem)),
        "runtime": CLUSTER["runtime_minutes"].get(rule, max(CLUSTER["min_runtime_minutes"], int(minutes) + 1)),
    }


def pretrain_resources(wildcards):
    p = config["pretrain"]
    return estimate("pretrain", wildcards.model, int(wildcards.tokens), 6,
                    p["batch_size"] * p["seq_len"])


def finetune_resources(wildcards):
    c = condition_of(wildcards)
    tokens, batch_tokens = plan.finetune_tokens(config, c)
    return estimate("finetune", c.model, tokens, 6, batch_tokens)


def evaluate_resources(wildcards):
    c = condition_of(wildcards)
    return estimate("evaluate", c.model, plan.evaluate_tokens(config, c), 2, config["evaluate"]["batch_size"] * 64)


def resources_of(estimator):
    """A rule's `resources:`: memory and runtime per job from one estimator function; the GPUs as
    configured, as plain values (a callable costs Snakemake a signature inspection per job)."""
    gpus = {"gpu": CLUSTER["gpus"]} | ({"gpu_model": CLUSTER["gpu_model"]} if CLUSTER["gpu_model"] and CLUSTER["gpus"] else {})
    return {key: (lambda wildcards, key=key: estimator(wildcards)[key]) for key in ("mem_mb", "runtime")} | gpus


# Zero- and few-shot translation (evaluate.transfer): translation runs on the chosen axes get a
# transfer job; their base models get the few-shot baseline (ftscale.grid decides which).
TRANSFER = grid.transfer_options(config)


def zero_shot_languages(task_name):
    return grid.zero_shot_languages(config, task_name)


def has_transfer(c):
    return grid.has_transfer(config, c)


def transfer_runs():
    return [(c, seed) for c, seed in all_runs() if has_transfer(c)]


def transfer_task(wildcards):
    return wildcards.task if "task" in wildcards.keys() else condition_of(wildcards).task


def transfer_data(wildcards):
    """Tokenized test and dev (the demonstrations) splits, and for finetuned runs the zero-shot sets."""
    task = transfer_task(wildcards)
    family = config["tasks"][task]["family"]
    languages = zero_shot_languages(task) if "condition" in wildcards.keys() else []
    return {"tokenizer": f"{RESULTS}/data/tokenizer/{family}/tokenizer.json",
            "test": f"{RESULTS}/data/tokens/{task}/test", "references": f"{RESULTS}/data/raw/{task}/test.jsonl",
            "demos": f"{RESULTS}/data/tokens/{task}/dev",
            "zero_shot": [f"{RESULTS}/data/tokens/{task}/zero_shot_{lang}" for lang in languages],
            "zero_shot_raw": [f"{RESULTS}/data/raw/{task}/zero_shot_{lang}.jsonl" for lang in languages]}


transfer_params = {
    "shots": TRANSFER["few_shot_shots"],
    "few_shot_examples": TRANSFER["few_shot_examples"],
    "max_source": lambda wc: config["tasks"][transfer_task(wc)]["max_source_tokens"],
    "max_target": lambda wc: config["tasks"][transfer_task(wc)]["max_target_tokens"],
    "max_new_tokens": config["evaluate"]["max_new_tokens"],
    "batch_size": config["evaluate"]["batch_size"],
    "seed": config["seed"],
}


def transfer_resources(wildcards):
    c = condition_of(wildcards)
    return estimate("evaluate", c.model, plan.transfer_tokens(config, c.task, True), 2, config["evaluate"]["batch_size"] * 64)


def base_transfer_resources(wildcards):
    return estimate("evaluate", wildcards.model, plan.transfer_tokens(config, wildcards.task, False), 2,
                    config["evaluate"]["batch_size"] * 64)
