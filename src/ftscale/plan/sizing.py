"""The grid before a GPU-hour is spent, and what each job asks of a cluster.

The grid: jobs per rule, conditions per task and axis, the conditions shared by two axes, and the
compute of each stage (FLOPs; GPU-hours at cluster.flops_per_second). `ftscale grid CONFIG` prints
it and writes results/<study>/grid.json.

The jobs: for every pretrain, finetune, evaluate and transfer job, its peak memory per GPU term by
term (ftscale.plan.memory), the micro-batch and the number of GPUs that fit cluster.gpu_memory_gb, the
data-parallel GPUs (and nodes) that fit its compute into cluster.max_runtime_minutes, or else the
resumable segments it runs as, and its host memory per node. rules/common.smk turns a JobPlan into
SLURM resources; with cluster.gpus 0 every job is a CPU job (the toy, the tests).

FLOPs follow the usual estimates: 6 x parameters x tokens to train, 2 x parameters x tokens to
evaluate. Token counts are upper bounds: every example at its maximum source + target length.
Pure Python on the config and ftscale.plan.grid (no torch), so a laptop previews the paper's grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ftscale.data.tokens import OWN_FORMAT
from ftscale.plan import data_jobs, grid, hub, memory, timing

JOB_STARTUP_MINUTES = 10  # start-up of a job: imports, reading the checkpoint and data from shared storage
SEGMENT_EXIT_MARGIN_MINUTES = 10  # a segment stops this long before its limit: save the state and exit (code 75)
FAILURE_RETRIES = 2  # resubmissions of a segmented job for real failures, beside its segments
ENCODING_TOKENS = OWN_FORMAT.example_tokens  # <s> source <sep> target </s>: finetune.encode
PROMPT_TOKENS = OWN_FORMAT.prompt_tokens  # <s> source <sep>: a decoding prompt


class PlanError(ValueError):
    """A job that no allowed number of GPUs fits; str() is one line naming it."""


def cluster_options(config: dict) -> dict:
    """The cluster a study runs on (config `cluster:`, its defaults from the schema)."""
    return config["cluster"]


def shape_of(config: dict, family: str | None, model: str) -> memory.Shape:
    """A model's shape: the config's size table, or a hub family's model config (ftscale.plan.hub:
    config.json of a local directory or cached model, else the known Pythia table)."""
    if family is None or not hub.is_hub_family(config, family):
        return memory.Shape.of(config, model)
    try:
        source = hub.source_of(config, family, model, grid.full_budget(config, family))
        return memory.Shape(**hub.shape_fields(hub.model_config(source)))
    except hub.UnknownShape as error:
        raise PlanError(str(error)) from None


def model_parameters(config: dict, model: str, family: str | None = None) -> int:
    """Parameters of a model size, from its shape (shape_of; family None: the size table)."""
    return memory.parameters(shape_of(config, family, model))


def prompt_length(condition: grid.Condition) -> int:
    """Soft-prompt slots before each example (prompt tuning); none for FMT and LoRA."""
    return condition.pet_size if condition.method == "prompt" else 0


def example_tokens(config: dict, task_name: str) -> int:
    """An encoded finetuning example at its longest: `<s> source <sep> target </s>`."""
    task = config["tasks"][task_name]
    return task["max_source_tokens"] + task["max_target_tokens"] + ENCODING_TOKENS


def finetune_steps(config: dict, condition: grid.Condition) -> int:
    """Optimizer steps of one finetuning run: the step cap or the epoch cap, whichever comes first."""
    batch_size = config["finetune"]["methods"][condition.method]["batch_size"]
    epoch_steps = config["finetune"]["max_epochs"] * math.ceil(condition.finetune_examples / batch_size)
    return min(grid.max_steps(config, condition.task, condition.method), epoch_steps)


def finetune_tokens(config: dict, condition: grid.Condition) -> int:
    """Tokens one finetuning run pushes through the model (training batches plus dev evaluations)."""
    task, method = config["tasks"][condition.task], config["finetune"]["methods"][condition.method]
    example = example_tokens(config, condition.task) + prompt_length(condition)
    steps = finetune_steps(config, condition)
    dev_examples = steps // config["finetune"]["eval_every"] * task["dev_examples"]
    return (steps * method["batch_size"] + dev_examples) * example


def evaluate_tokens(config: dict, condition: grid.Condition) -> int:
    """Test loss (one pass over source + target) and greedy decoding (the prompt, then one token per
    step through the KV cache)."""
    task = config["tasks"][condition.task]
    per_example = 2 * task["max_source_tokens"] + task["max_target_tokens"] + config["evaluate"]["max_new_tokens"]
    return task["test_examples"] * per_example


def few_shot_prompt_tokens(config: dict, task_name: str, shots: int) -> int:
    """A k-shot prompt at its longest: k demonstrations `<s> source <sep> target </s>`, then `<s> source <sep>`."""
    return shots * example_tokens(config, task_name) + config["tasks"][task_name]["max_source_tokens"] + PROMPT_TOKENS


def transfer_tokens(config: dict, task_name: str, zero_shot: bool) -> int:
    """A transfer job's tokens: k-shot prompts (k demonstrations and the query) and their greedy
    steps, and for finetuned runs the zero-shot prompts and steps."""
    task, new = config["tasks"][task_name], config["evaluate"]["max_new_tokens"]
    options = grid.transfer_options(config)
    tokens = sum(
        options["few_shot_examples"] * (few_shot_prompt_tokens(config, task_name, k) + new)
        for k in options["few_shot_shots"]
    )
    if zero_shot:
        languages = grid.zero_shot_languages(config, task_name)
        tokens += len(languages) * options["zero_shot_examples"] * (task["max_source_tokens"] + new)
    return tokens


# ---- what each job asks of a cluster ----


@dataclass(frozen=True)
class JobPlan:
    """One job's plan: its GPUs and micro-batch, its peak memory per GPU term by term, and its
    SLURM request (per node: host memory; per segment: runtime)."""

    rule: str
    gpus: int  # 0: a CPU job
    nodes: int
    micro_batch_size: int | None  # examples (windows) per forward pass on one GPU; None: the whole batch (CPU)
    memory: memory.DeviceMemory  # peak per GPU (or of the CPU process), bytes
    host_memory_bytes: float  # per node
    compute_hours: float  # estimated wall time of its compute on its GPUs, without start-up
    runtime_minutes: int  # the request, per segment
    segments: int  # submissions it needs; > 1: it exits with 75 at each segment's end and resumes
    segment_seconds: float | None  # the training loop saves and exits after this long (GPU training jobs)
    cpus: int  # per node

    @property
    def host_memory_mb(self) -> int:
        """What sbatch --mem asks for (MB, per node)."""
        return math.ceil(self.host_memory_bytes / 1e6)

    @property
    def peak_gpu_memory_gb(self) -> float:
        return self.memory.total / memory.GB if self.gpus else 0.0


def gpu_counts(cluster: dict, batch: int, training: bool) -> list[int]:
    """GPU counts a job may use, fewest first: evaluation runs on one; training from cluster.gpus up
    to cluster.max_gpus_per_job, whole nodes beyond one, each GPU an equal share of the batch."""
    if not training:
        return [1]
    per_node = cluster["gpus_per_node"]
    return [
        g
        for g in range(max(1, cluster["gpus"]), cluster["max_gpus_per_job"] + 1)
        if batch % g == 0 and (g <= per_node or g % per_node == 0)
    ]


def fsdp_shards(cluster: dict, gpus: int) -> int:
    """What a job's weights, gradients and optimizer state are sharded over: all its GPUs on one node;
    on several, the GPUs of one node (HSDP: each node holds a sharded copy, ftscale.train.distributed)."""
    return min(gpus, cluster["gpus_per_node"])


def largest_micro_batch(work: memory.Workload, batch: int, gpus: int, usable_bytes: float, shards: int) -> int | None:
    """The largest micro-batch dividing each GPU's share of the batch that fits; None if even one does not."""
    share = batch // gpus
    fixed = memory.device_memory(work, 0, shards, on_gpu=True).total
    room = int((usable_bytes - fixed) // memory.per_example_bytes(work, on_gpu=True, shards=shards))
    return next((m for m in range(min(room, share), 0, -1) if share % m == 0), None)


def runtime_request(cluster: dict, compute_hours: float, limit_minutes: int) -> tuple[int, int]:
    """(minutes per segment, segments): the estimate with start-up, or else segments at the limit."""
    minutes = cluster["safety_factor"] * compute_hours * 60 + JOB_STARTUP_MINUTES
    if minutes <= limit_minutes:
        return max(cluster["min_runtime_minutes"], math.ceil(minutes)), 1
    per_segment = limit_minutes - JOB_STARTUP_MINUTES - SEGMENT_EXIT_MARGIN_MINUTES
    return limit_minutes, math.ceil(cluster["safety_factor"] * compute_hours * 60 / per_segment)


def compute_hours(flops: float, gpus: int, cluster: dict, work: memory.Workload | None = None, batch: int = 0) -> float:
    """Wall hours of a job's compute, data parallel over its GPUs (one device on the CPU): ftscale.plan.timing,
    from the workload's parameters and its optimizer steps (FLOPs over those of one batch)."""
    if work is None:
        return timing.compute_seconds(cluster, flops, gpus) / 3600
    parameters = memory.parameters(work.shape)
    trained = memory.trainable_parameters(work.shape, work.method, work.pet_size) if work.training else 0
    steps = math.ceil(flops / ((6 if work.training else 2) * parameters * max(batch, 1) * work.tokens))
    return timing.compute_seconds(cluster, flops, gpus, parameters, trained, steps) / 3600


def plan_job(
    config: dict,
    rule: str,
    label: str,
    work: memory.Workload,
    batch: int,
    flops: float,
    data_bytes: float,
    threads: int,
    limit_minutes: int | None = None,
) -> JobPlan:
    """Fewest GPUs whose memory fits a micro-batch; more (data parallel) until the compute fits the
    runtime limit; at the cap, resumable segments."""
    cluster = cluster_options(config)
    limit = limit_minutes or cluster["max_runtime_minutes"]
    if limit <= JOB_STARTUP_MINUTES + SEGMENT_EXIT_MARGIN_MINUTES:
        raise PlanError(
            f"{rule} {label} has {limit} minutes left of cluster.max_runtime_minutes "
            f"{cluster['max_runtime_minutes']} (after its run group's other jobs): too little to train in"
        )
    if not cluster["gpus"]:
        hours = compute_hours(flops, 1, cluster, work, batch)
        minutes, segments = runtime_request(cluster, hours, limit)
        device = memory.device_memory(work, batch, 1, on_gpu=False)
        host = memory.HOST_BASELINE_BYTES + data_bytes + device.total
        return JobPlan(rule, 0, 1, None, device, host, hours, minutes, segments, None, threads)

    usable = memory.USABLE_GPU_FRACTION * cluster["gpu_memory_gb"] * memory.GB
    counts = gpu_counts(cluster, batch, work.training)
    fitting = None  # (gpus, micro-batch) of the most GPUs tried that fit
    for gpus in counts:  # fewest GPUs first: stop at the first that fits memory and runtime
        micro = largest_micro_batch(work, batch, gpus, usable, fsdp_shards(cluster, gpus))
        if micro:
            fitting = gpus, micro
            if runtime_request(cluster, compute_hours(flops, gpus, cluster, work, batch), limit)[1] == 1:
                break
    if not fitting:
        one = memory.device_memory(work, 1, fsdp_shards(cluster, max(counts or [1])), on_gpu=True)
        raise PlanError(
            f"{rule} {label} needs {one.total / memory.GB:.1f} GB per GPU at micro-batch 1 "
            f"on the most GPUs allowed: more than cluster.gpu_memory_gb {cluster['gpu_memory_gb']} allows"
        )
    gpus, micro = fitting
    hours = compute_hours(flops, gpus, cluster, work, batch)
    minutes, segments = runtime_request(cluster, hours, limit)
    ranks_per_node = min(gpus, cluster["gpus_per_node"])
    # per node, the first (rank 0's): every process's libraries and data, rank 0's copies of the weights
    host = ranks_per_node * memory.host_process_bytes(True, data_bytes) + memory.host_weights_bytes(
        work.shape, sharded=gpus > 1
    )
    if host > cluster["node_memory_gb"] * memory.GB:
        raise PlanError(
            f"{rule} {label} needs {host / memory.GB:.0f} GB of host memory per node "
            f"({ranks_per_node} processes): more than cluster.node_memory_gb {cluster['node_memory_gb']}"
        )
    segment_seconds = (minutes - SEGMENT_EXIT_MARGIN_MINUTES) * 60.0 if work.training else None
    return JobPlan(
        rule,
        gpus,
        math.ceil(gpus / ranks_per_node),
        micro,
        memory.device_memory(work, micro, fsdp_shards(cluster, gpus), on_gpu=True),
        host,
        hours,
        minutes,
        segments,
        segment_seconds,
        threads * ranks_per_node,
    )


def pretrain_job(config: dict, model: str, tokens: int, rule: str = "pretrain") -> JobPlan:
    """A pretraining run (`rule`: its Snakemake rule; a run that saves checkpoints has one per family)."""
    p, shape = config["pretrain"], memory.Shape.of(config, model)
    work = memory.Workload(shape, "pretrain", None, training=True, tokens=p["seq_len"], logit_tokens=p["seq_len"])
    pinned_batch = p["batch_size"] * p["seq_len"] * memory.TOKEN_BYTES_HOST
    return plan_job(
        config,
        rule,
        f"{model} on {tokens:,} tokens",
        work,
        p["batch_size"],
        6 * memory.parameters(shape) * tokens,
        pinned_batch,
        p["threads"],
    )


def finetune_job(config: dict, condition: grid.Condition, after: list[JobPlan] | None = None) -> JobPlan:
    """A finetuning run. It shares its allocation with its evaluation and transfer jobs (group
    `run`: Snakemake adds their runtimes), so its own limit is what they leave (`after`: their
    plans, when the caller has them)."""
    task, shape = config["tasks"][condition.task], shape_of(config, condition.family, condition.model)
    work = memory.Workload(
        shape,
        condition.method,
        condition.pet_size,
        training=True,
        tokens=example_tokens(config, condition.task) + prompt_length(condition),
        logit_tokens=task["max_target_tokens"] + 1,
    )
    data = memory.encoded_examples_bytes(
        condition.finetune_examples + task["dev_examples"], example_tokens(config, condition.task)
    )
    after = after or run_group_jobs(config, condition)
    limit = cluster_options(config)["max_runtime_minutes"] - max(job.runtime_minutes for job in after)
    batch = config["finetune"]["methods"][condition.method]["batch_size"]
    return plan_job(
        config,
        "finetune",
        condition.id,
        work,
        batch,
        6 * memory.parameters(shape) * finetune_tokens(config, condition),
        data,
        config["finetune"]["threads"],
        limit,
    )


def run_group_jobs(config: dict, condition: grid.Condition) -> list[JobPlan]:
    """The jobs after a finetuning run in its allocation: its evaluation, and its transfer if any."""
    transfer = [transfer_job(config, condition)] if grid.has_transfer(config, condition) else []
    return [evaluate_job(config, condition), *transfer]


def evaluate_job(config: dict, condition: grid.Condition) -> JobPlan:
    """Test loss and greedy decoding of a finetuned run, counted at once (an upper bound)."""
    task, shape = config["tasks"][condition.task], shape_of(config, condition.family, condition.model)
    prompt = task["max_source_tokens"] + PROMPT_TOKENS + prompt_length(condition)
    work = memory.Workload(
        shape,
        condition.method,
        condition.pet_size,
        training=False,
        tokens=example_tokens(config, condition.task) + prompt_length(condition),
        logit_tokens=task["max_target_tokens"] + 1,
        cached_tokens=prompt + config["evaluate"]["max_new_tokens"],
    )
    data = memory.encoded_examples_bytes(task["test_examples"], example_tokens(config, condition.task))
    return plan_job(
        config,
        "evaluate",
        condition.id,
        work,
        config["evaluate"]["batch_size"],
        2 * memory.parameters(shape) * evaluate_tokens(config, condition),
        data,
        config["finetune"]["threads"],
    )


def transfer_job(
    config: dict, condition: grid.Condition | None = None, task_name: str | None = None, model: str | None = None
) -> JobPlan:
    """Zero- and few-shot decoding of a finetuned run (condition), or of a base model (task, model:
    the rule base_transfer). Its longest prompt is the one with the most demonstrations."""
    task_name, model = (condition.task, condition.model) if condition else (task_name, model)
    family = config["tasks"][task_name]["family"]
    shape, shots = shape_of(config, family, model), grid.transfer_options(config)["few_shot_shots"]
    prompt = max(
        [few_shot_prompt_tokens(config, task_name, k) for k in shots]
        + [config["tasks"][task_name]["max_source_tokens"] + PROMPT_TOKENS]
    )
    prompt += prompt_length(condition) if condition else 0
    work = memory.Workload(
        shape,
        condition.method if condition else "base",
        condition.pet_size if condition else None,
        training=False,
        tokens=prompt,
        logit_tokens=1,
        cached_tokens=prompt + config["evaluate"]["max_new_tokens"],
    )
    flops = 2 * memory.parameters(shape) * transfer_tokens(config, task_name, condition is not None)
    return plan_job(
        config,
        "transfer" if condition else "base_transfer",
        condition.id if condition else f"{task_name} {model}",
        work,
        config["evaluate"]["batch_size"],
        flops,
        0.0,
        config["finetune"]["threads"],
    )


def job_plans(config: dict) -> list[JobPlan]:
    """A plan for every distinct job of the grid (seeds of a condition share theirs)."""
    conditions = grid.expand_conditions(config)
    plans = [
        pretrain_job(config, job.model, job.tokens, job.rule) for job in grid.pretrain_jobs(config, conditions).values()
    ]
    for c in conditions.values():
        after = run_group_jobs(config, c)
        plans += [finetune_job(config, c, after), *after]
    plans += [
        transfer_job(config, task_name=task, model=model)
        for task, model, _ in grid.base_transfer_runs(config, conditions)
    ]
    return plans


def summarize(config: dict) -> dict:
    """The grid's size and cost, and what its jobs ask of the cluster, as grid.json holds it."""
    conditions = grid.expand_conditions(config)
    pretrain = grid.pretrain_runs(config, conditions)
    pretrain_jobs = grid.pretrain_jobs(config, conditions)  # checkpoints of one run are free
    seeds = len(grid.seeds(config))
    runs = len(conditions) * seeds
    transfer = [c for c in conditions.values() if grid.has_transfer(config, c)]
    base_transfer = grid.base_transfer_runs(config, conditions)
    jobs = grid.jobs_per_rule(config, conditions)

    # a model's name is unique across families (ftscale.plan.hub.check): params are keyed by it alone
    params = {model: model_parameters(config, model, family) for family, model, _ in pretrain.values()}
    params = {model: params[model] for model in sorted(params, key=params.get)}
    flops = {
        "pretrain": sum(6 * params[job.model] * job.tokens for job in pretrain_jobs.values()),
        "finetune": seeds * sum(6 * params[c.model] * finetune_tokens(config, c) for c in conditions.values()),
        "evaluate": seeds * sum(2 * params[c.model] * evaluate_tokens(config, c) for c in conditions.values()),
        "transfer": seeds * sum(2 * params[c.model] * transfer_tokens(config, c.task, True) for c in transfer)
        + sum(2 * params[model] * transfer_tokens(config, task, False) for task, model, _ in base_transfer),
    }
    cluster, plans = cluster_options(config), job_plans(config)
    gpu_hours = {stage: f / cluster["flops_per_second"] / 3600 for stage, f in flops.items()}

    per_task_axis: dict[str, dict[str, int]] = {}
    for (task, _method, axis), count in sorted(grid.axis_counts(conditions).items()):
        per_task_axis.setdefault(task, {}).setdefault(axis, 0)
        per_task_axis[task][axis] += count
    shared = [c.id for c in conditions.values() if len(c.axes) > 1]
    return {
        "study": config["study"],
        "pretrain_runs": len(pretrain),
        "pretrain_jobs": len(pretrain_jobs),
        "data_axis": grid.data_axis(config),
        "conditions": len(conditions),
        "seeds": seeds,
        "finetune_runs": runs,
        "base_models": len({c.pretrain_id for c in conditions.values()}),
        "jobs": jobs,
        "total_jobs": sum(jobs.values()),
        "conditions_per_task_axis": per_task_axis,
        "shared_conditions": len(shared),
        "shared_condition_ids": shared,
        "parameters": params,
        "flops": flops,
        "flops_per_second": cluster["flops_per_second"],
        "time_model": timing.assumption(cluster),
        "gpu_hours_per_stage": gpu_hours,
        "gpu_hours": sum(gpu_hours.values()),
        "gpus": cluster["gpus"],
        "gpu_memory_gb": cluster["gpu_memory_gb"],
        **requests_per_rule(plans),
        "data_jobs": data_summary(config, sorted({c.task for c in conditions.values()})),
        "gpu_hours_per_rule": {
            rule: sum(max(p.gpus, 1) * p.compute_hours for p in plans if p.rule == rule)
            * (seeds if rule in ("finetune", "evaluate", "transfer") else 1)
            for rule in dict.fromkeys(p.rule for p in plans)
        },
    }


def data_summary(config: dict, tasks: list[str]) -> dict[str, dict]:
    """The largest request of each data rule (ftscale.plan.data_jobs), and any job beyond the cluster."""
    plans = data_jobs.data_plans(config, tasks)
    return {
        rule: {
            "jobs": [p.label for p in plans if p.rule == rule],
            "max_input_gb": max(p.input_bytes for p in plans if p.rule == rule) / memory.GB,
            "max_host_memory_gb": max(p.host_memory_bytes for p in plans if p.rule == rule) / memory.GB,
            "max_runtime_minutes": max(p.runtime_minutes for p in plans if p.rule == rule),
            "cpus": max(p.cpus for p in plans if p.rule == rule),
            "over": {p.label: p.over for p in plans if p.rule == rule and p.over},
        }
        for rule in dict.fromkeys(p.rule for p in plans)
    }


def requests_per_rule(plans: list[JobPlan]) -> dict[str, dict[str, float]]:
    """The largest request of each rule's jobs: GPUs, per-GPU memory, runtime, host memory, segments."""
    figures = {
        "gpus_per_job": lambda p: p.gpus,
        "peak_gpu_memory_gb": lambda p: round(p.peak_gpu_memory_gb, 2),
        "max_runtime_minutes": lambda p: p.runtime_minutes,
        "max_segments": lambda p: p.segments,
        "max_host_memory_gb": lambda p: round(p.host_memory_bytes / memory.GB, 2),
    }
    return {
        key: {rule: max(figure(p) for p in plans if p.rule == rule) for rule in dict.fromkeys(p.rule for p in plans)}
        for key, figure in figures.items()
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"study {summary['study']}: {summary['pretrain_runs']} base models from {summary['pretrain_jobs']} "
        f"pretraining runs (data axis: {summary['data_axis']}), {summary['conditions']} "
        f"finetuning conditions x {summary['seeds']} seeds = {summary['finetune_runs']} finetuning runs "
        f"({summary['shared_conditions']} conditions shared by two axes, each run once)",
        "",
        "jobs per rule:",
    ]
    width = max(map(len, summary["jobs"]))
    lines += [f"  {rule:{width}s} {count:8,d}" for rule, count in summary["jobs"].items()]
    lines += [
        f"  {'total':{width}s} {summary['total_jobs']:8,d}",
        "",
        "conditions per task and axis (shared ones on each):",
    ]
    for task, axes in summary["conditions_per_task_axis"].items():
        lines.append(f"  {task:22s} " + "  ".join(f"{axis} {n}" for axis, n in axes.items()))
    device = "GPU" if summary["gpus"] else "CPU"
    lines += [
        "",
        summary["time_model"],
        f"compute (at {summary['flops_per_second']:.3g} FLOP/s sustained per {device}):",
    ]
    for stage, flops in summary["flops"].items():
        lines.append(
            f"  {stage:10s} {flops:10.3g} FLOPs  {summary['gpu_hours_per_stage'][stage]:12,.3g} {device}-hours"
        )
    lines.append(
        f"  {'total':10s} {sum(summary['flops'].values()):10.3g} FLOPs  {summary['gpu_hours']:12,.3g} {device}-hours"
    )
    lines += [
        "",
        f"per rule, the largest request of its jobs ({device} jobs"
        + (f", {summary['gpu_memory_gb']:g} GB GPUs" if summary["gpus"] else "")
        + f") and its {device}-hours in all:",
        f"  {'rule':{width}s} {'jobs':>6s} {'GPUs':>5s} {'GB/GPU':>7s} {'host GB/node':>12s} {'minutes':>8s} "
        f"{'segments':>8s} {device + '-hours':>10s}",
    ]
    for rule, gpus in summary["gpus_per_job"].items():
        lines.append(
            f"  {rule:{width}s} {summary['jobs'][rule]:6,d} {gpus:5d} {summary['peak_gpu_memory_gb'][rule]:7.1f} "
            f"{summary['max_host_memory_gb'][rule]:12.1f} {summary['max_runtime_minutes'][rule]:8d} "
            f"{summary['max_segments'][rule]:8d} {summary['gpu_hours_per_rule'][rule]:10,.0f}"
        )
    lines += [
        "",
        "data jobs (CPU: ftscale.plan.data_jobs), the largest request per rule:",
        f"  {'rule':{width}s} {'jobs':>6s} {'input GB':>13s} {'host GB':>8s} {'minutes':>8s} CPUs",
    ]
    for rule, data in summary["data_jobs"].items():
        lines.append(
            f"  {rule:{width}s} {summary['jobs'].get(rule, len(data['jobs'])):6,d} {data['max_input_gb']:13,.1f} "
            f"{data['max_host_memory_gb']:8,.1f} {data['max_runtime_minutes']:8,d} {data['cpus']:4d}"
        )
        lines += [f"    {label}: needs {over}: asked at the limit" for label, over in data["over"].items()]
    return "\n".join(lines)
