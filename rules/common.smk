# The config expanded into the study grid (one source of truth: ftscale.plan.grid), and the small input
# functions the rules share.
import os
import shutil
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

try:
    from ftscale import config as study_config
    from ftscale.plan import data_jobs, grid, sizing as plan
    from ftscale.runtime import jobs, ranks
    from ftscale.runtime.internals.snakemake import (
        cache_snakemake_function_params,
        check_each_script_once,
        pause_garbage_collection,
        resume_garbage_collection,
    )
except ModuleNotFoundError as error:
    if error.name != "ftscale":
        raise
    sys.exit(f"ftscale is not installed in this Python ({sys.executable}): pip install -e {workflow.basedir}")

# Snakemake inspects the signature of every input, params, resources and group function again for
# each job (430,000 times in the paper grid's dry run, a quarter of its CPU time): once per function.
# And it reads a rule's script for each job, to check that it exists: once per rule.
cache_snakemake_function_params()
check_each_script_once()
# And Python's garbage collector rescans the DAG's millions of objects while Snakemake builds it (15%
# of the paper dry run's CPU): off until the jobs start.
pause_garbage_collection()


onstart:
    resume_garbage_collection()


# The conda environments (envs/*.yaml, --sdm conda) install ftscale from this checkout, editable:
# their pip entry `-e ${FTSCALE_ROOT}` reads this (pip expands ${VAR} in requirements).
os.environ["FTSCALE_ROOT"] = workflow.basedir

# In a job (remote mode: the Snakemake inside a SLURM allocation), SLURM's warning signal
# (--signal=USR1@margin, ftscale.runtime.ranks.slurm_resources) reaches every process of the step,
# this Snakemake too, which USR1's default action would kill: ignored, as by the scripts and
# torchrun it starts (they inherit it); a training loop catches it (ftscale.runtime.jobs).
if workflow.remote_exec:
    jobs.ignore_stop_signal()

# Validation also puts the config in canonical form, in place (ftscale.runtime.canonical): keys sorted at
# every level, each number written one way. Every params value below derives from it, so
# Snakemake's "params changed" (a repr() comparison) sees meaning, not formatting: a config
# re-serialised, reordered or written as JSON reruns nothing.
try:
    study_config.validate(config)
    study_config.check_data_files(config)      # every missing local file, named before any job
except study_config.ConfigError as error:
    sys.exit(f"Config error: {error}")

# Conda mode (--sdm conda) without conda: stop here with one line, before Snakemake's own
# WorkflowError from `conda info` when it builds the DAG (README, "Conda mode").
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method and not (
        workflow.deployment_settings.conda_base_path or shutil.which("conda")):
    sys.exit("Conda mode (--sdm conda): no conda on PATH; install one (e.g. Miniforge) or run without --sdm conda")

RESULTS = f"results/{config['study']}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
CONDITIONS = grid.expand_conditions(config)
PRETRAIN_RUNS = grid.pretrain_runs(config, CONDITIONS)
SEEDS = grid.seeds(config)


def family_pattern(families):
    """A wildcard constraint matching exactly these families (none: a pattern that matches nothing)."""
    return "|".join(families) or "(?!)"


# Hub families are fetched (rules/fetch.smk), the others pretrained: their rules share output
# paths (a base checkpoint, a family's tokenizer), told apart by the family wildcard.
from ftscale.plan import hub  # noqa: E402

PRETRAINING_FAMILIES = family_pattern(hub.pretraining_families(config))
HUB_FAMILIES = family_pattern(hub.hub_families(config))


wildcard_constraints:
    family="|".join(config["families"]),
    task="|".join(config["tasks"]),
    model=grid.MODEL_NAME,
    tokens=r"\d+",
    seed=r"\d+",
    split=r"train|dev|test",
    lang=r"[A-Za-z0-9_-]+",
    condition=grid.CONDITION_PATTERN,     # the regex of Condition.id, built from its template


def task_of(wildcards):
    return config["tasks"][wildcards.task]


def condition_of(wildcards):
    return CONDITIONS[wildcards.condition]


def pretrain_dir(family, model, tokens):
    return f"{RESULTS}/pretrain/{grid.pretrain_id(family, model, tokens)}"


def run_dir(condition_id="{condition}", seed="{seed}"):
    """A finetuning run's directory; without arguments, the pattern of the rules' wildcards."""
    return f"{RESULTS}/finetune/{condition_id}/seed{seed}"


def tokenizer_path(family="{family}"):
    """A family's tokenizer (rule tokenizer, or hub_tokenizer); without an argument, the wildcard pattern."""
    return f"{RESULTS}/data/tokenizer/{family}/tokenizer.json"


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
        "lr_min_divisor": config["finetune"]["lr_min_divisor"],
        "warmup_steps": config["finetune"]["warmup_steps"],
        "dev_batch_size": config["finetune"]["dev_batch_size"],
        "max_source": task["max_source_tokens"],
        "max_target": task["max_target_tokens"],
        "seed": config["seed"] + int(wildcards.seed),
        # examples per forward pass (gradients accumulate over the batch): what fits the job's GPU
        # (ftscale.plan.sizing); None on the CPU: the whole batch at once
        "micro_batch_size": finetune_plan(wildcards).micro_batch_size,
    } | changed_method_options(c.method, method) | changed_options("finetune", ["attention", "checkpoint_dtype"]) | (
        {"micro_batch_tokens": finetune_plan(wildcards).micro_batch_tokens}
        if finetune_plan(wildcards).micro_batch_tokens
        else {}
    )


def changed_options(section, keys):
    """The config section's keys that differ from the schema's defaults, which the jobs fill in:
    a study built before these were keys stays up to date, and an edit reruns exactly the jobs that
    read it. None changed: no entry."""
    return {key: config[section][key] for key in keys if config[section][key] != study_config.schema_default(section, key)}


def changed_method_options(name, method):
    """The method's options (LoRA alpha, dropout, targets; prompt init) that differ from the schema's
    defaults, which the job fills in: a study built before these were keys stays up to date, and an
    edit reruns exactly that method's jobs. None changed: no entry."""
    defaults = study_config.method_option_defaults(name)
    changed = {key: method[key] for key, value in defaults.items() if method[key] != value}
    return {"method_options": changed} if changed else {}


def all_runs():
    """(condition, seed) of every finetuning run, in grid order."""
    return [(c, seed) for c in CONDITIONS.values() for seed in SEEDS]


def base_checkpoint(wildcards):
    c = condition_of(wildcards)
    return pretrain_dir(c.family, c.model, c.pretrain_tokens)


# Resources for a scheduler, from ftscale.plan.sizing: GPUs, nodes, CPUs, host memory per node and runtime
# of every job (the memory and time model lives there). cluster.gpus 0: CPU jobs, gpu=0 as a plain
# value (a callable costs Snakemake a signature inspection per job). Per-rule overrides of mem_mb and
# runtime in config["cluster"]. A local run ignores these beyond scheduling.
CLUSTER = plan.cluster_options(config)
JOB_PLANS = {}       # (rule, job key) -> plan: Snakemake asks once per resource


def job_plan(rule, key, make):
    if (rule, key) not in JOB_PLANS:
        try:
            JOB_PLANS[rule, key] = make()
        except plan.PlanError as error:
            sys.exit(f"Config error: cluster: {error}")
    return JOB_PLANS[rule, key]


def pretrain_plan(job):
    """The plan of a pretraining run: `job` is the rule pretrain's wildcards or a grid.PretrainJob."""
    model, tokens, rule = job.model, int(job.tokens), getattr(job, "rule", "pretrain")
    return job_plan(rule, (model, tokens), lambda: plan.pretrain_job(config, model, tokens, rule))


def condition_plan(rule, condition):
    """The plan of a condition's finetune, evaluate or transfer job (seeds share theirs); a finetune's
    is made with the plans of the jobs after it."""
    if rule == "evaluate":
        make = lambda: plan.evaluate_job(config, condition)
    elif rule == "transfer":
        make = lambda: plan.transfer_job(config, condition)
    else:
        def make():
            transfer = [condition_plan("transfer", condition)] if has_transfer(condition) else []
            return plan.finetune_job(config, condition, [condition_plan("evaluate", condition), *transfer])
    return job_plan(rule, condition.id, make)


def finetune_plan(wildcards):
    return condition_plan("finetune", condition_of(wildcards))


def evaluate_plan(wildcards):
    return condition_plan("evaluate", condition_of(wildcards))


def transfer_plan(wildcards):
    return condition_plan("transfer", condition_of(wildcards))


def base_transfer_plan(wildcards):
    return job_plan("base_transfer", (wildcards.task, wildcards.model),
                    lambda: plan.transfer_job(config, task_name=wildcards.task, model=wildcards.model))


def resources_of(rule, plan_of):
    """A rule's `resources:` from its jobs' plans: host memory per node (mem_mb) and runtime per
    segment; on GPUs also the GPU count, CPUs per node (threads x processes) and, for training,
    nodes (evaluation runs on one GPU; a `nodes` there would add up with its group neighbour's)
    and segment_seconds (the scripts pass it to the training loop; absent: no segments). Across
    nodes, CPUs per task are per rank (one task per GPU), else per node."""
    resources = {
        "mem_mb": lambda wc: CLUSTER["mem_mb"].get(rule) or plan_of(wc).host_memory_mb,
        "runtime": lambda wc: CLUSTER["runtime_minutes"].get(rule) or plan_of(wc).runtime_minutes,
    }
    if not CLUSTER["gpus"]:
        return resources | {"gpu": 0}
    resources |= {"gpu": lambda wc: plan_of(wc).gpus, "cpus_per_task": lambda wc: plan_of(wc).cpus}
    if rule in ("pretrain", "finetune"):
        # nodes, CPUs per task and, across nodes, one task per GPU and `mpi` (the jobstep plugin then
        # leaves the step to the job): ftscale.runtime.ranks.slurm_resources; its unset ones drop out
        for key in ranks.SLURM_KEYS:
            resources[key] = lambda wc, key=key: slurm_request(plan_of(wc))[key]
        # when the training loop saves its state and exits (75) to be resubmitted; a resource,
        # not a param: it changes when a runtime estimate does, never what the job computes
        resources["segment_seconds"] = lambda wc: int(plan_of(wc).segment_seconds)
    return resources | ({"gpu_model": CLUSTER["gpu_model"]} if CLUSTER["gpu_model"] else {})


def slurm_request(training_plan):
    """The SLURM side of a training job's plan; its warning comes when the planned save margin is left."""
    margin = training_plan.runtime_minutes * 60 - int(training_plan.segment_seconds)
    return ranks.slurm_resources(training_plan.gpus, training_plan.nodes, training_plan.cpus, margin)


def data_plan_of(rule):
    """The plan (ftscale.plan.data_jobs) of a data rule's job, by its family or task."""
    def plan_of(wc):
        key = wc.family if "family" in wc.keys() else wc.task
        by = {"family": key} if "family" in wc.keys() else {"task": key}
        return job_plan(rule, key, lambda: data_jobs.data_job(config, rule, **by))
    return plan_of


def data_resources(rule):
    """A data rule's `resources:` (ftscale.plan.data_jobs): host memory, runtime and CPUs, sized from
    the config by the job's family or task; no GPU. cluster.mem_mb / runtime_minutes override."""
    plan_of = data_plan_of(rule)
    return {"mem_mb": lambda wc: CLUSTER["mem_mb"].get(rule) or plan_of(wc).host_memory_mb,
            "runtime": lambda wc: CLUSTER["runtime_minutes"].get(rule) or plan_of(wc).runtime_minutes,
            "cpus_per_task": lambda wc: plan_of(wc).cpus, "gpu": 0}


def data_threads(rule):
    """A tokenizing rule's `threads:`: the planned CPUs of its job, which its batch encoder runs on
    (tokens.encoder_threads); Snakemake caps them at --cores when it runs the job itself."""
    plan_of = data_plan_of(rule)
    return lambda wildcards: plan_of(wildcards).cpus


def run_group(wildcards):
    """A finetune job shares its allocation with its evaluate and transfer jobs (group `run`, one
    submission) where it runs on one GPU or the CPU; a multi-GPU finetune does not: its GPUs would sit
    idle while the one-GPU evaluation runs, so evaluation is then a job of its own (None: no group)."""
    if not CLUSTER["gpus"]:
        return "run"
    return "run" if condition_plan("finetune", condition_of(wildcards)).gpus <= 1 else None


def evaluation_batch_size(plan_of):
    """Examples per test-loss and decoding batch: on a GPU the planned micro-batch (what fits its
    memory; batching does not change what is computed), else evaluate.batch_size."""
    return lambda wc: plan_of(wc).micro_batch_size or config["evaluate"]["batch_size"]


def segment_retries(rule):
    """`retries:` of a training rule whose jobs run as resumable segments: a segment ends with a
    failed exit (75), so Snakemake must resubmit such a job segments - 1 times, plus the retries
    for real failures (plan.FAILURE_RETRIES; the rule's value replaces --retries). None (CPU
    jobs, or one segment each): the command line's. Plans every job of the rule, at parse time."""
    if not CLUSTER["gpus"]:
        return None
    if rule == "pretrain":
        plans = [pretrain_plan(job) for job in PRETRAIN_JOBS.values()]
    else:
        plans = [condition_plan("finetune", c) for c in CONDITIONS.values()]
    extra = max((p.segments for p in plans), default=1) - 1   # no jobs (no family pretrains): none
    return plan.FAILURE_RETRIES + extra if extra else None


# Zero- and few-shot translation, few-shot summarization (evaluate.transfer): runs on the chosen axes
# get a transfer job; their base models get the few-shot baseline (ftscale.plan.grid decides which).
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
    return {"tokenizer": tokenizer_path(family),
            "test": f"{RESULTS}/data/tokens/{task}/test", "references": f"{RESULTS}/data/raw/{task}/test.jsonl",
            "demos": f"{RESULTS}/data/tokens/{task}/dev",
            "zero_shot": [f"{RESULTS}/data/tokens/{task}/zero_shot_{lang}" for lang in languages],
            "zero_shot_raw": [f"{RESULTS}/data/raw/{task}/zero_shot_{lang}.jsonl" for lang in languages]}


transfer_params = {
    "shots": lambda wc: grid.few_shot_shots(config, transfer_task(wc)),
    "task_type": lambda wc: config["tasks"][transfer_task(wc)]["type"],
    "few_shot_examples": TRANSFER["few_shot_examples"],
    "max_source": lambda wc: config["tasks"][transfer_task(wc)]["max_source_tokens"],
    "max_target": lambda wc: config["tasks"][transfer_task(wc)]["max_target_tokens"],
    "max_new_tokens": config["evaluate"]["max_new_tokens"],
    "seed": config["seed"],
}

