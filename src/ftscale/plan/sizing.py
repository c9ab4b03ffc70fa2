"""What each job of the grid asks of a cluster (`ftscale grid`'s summary of them: ftscale.plan.summary).

For every pretrain, finetune, evaluate and transfer job: its peak memory per GPU term by term
(ftscale.plan.memory), the micro-batch and the number of GPUs that fit cluster.gpu_memory_gb, the
data-parallel GPUs (and nodes) that fit its compute into cluster.max_runtime_minutes, or else the
resumable segments it runs as, and its host memory per node. rules/common.smk turns a JobPlan into
SLURM resources; with cluster.gpus 0 every job is a CPU job (the toy, the tests).

FLOPs follow the usual estimates: 6 x parameters x tokens to train, 2 x parameters x tokens to
evaluate. Token counts are upper bounds: every example at its maximum source + target length.
Pure Python on the config and ftscale.plan.grid (no torch), so a laptop previews the paper's grid.
Past 300 lines: the token counts, the GPU and micro-batch search and the four kinds of job plan
read as one chain (a job's plan is its tokens through plan_job); split, each part is read with the
others open beside it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ftscale.data.tokens import OWN_FORMAT
from ftscale.plan import grid, hub, memory, timing

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
        for k in grid.few_shot_shots(config, task_name)
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
    # finetune.micro_batch_unit tokens: packed tokens per forward pass on one GPU (micro_batch_size
    # is then None); None: micro-batches of examples
    micro_batch_tokens: int | None = None

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
    """The largest micro-batch dividing each GPU's share of the batch that fits, in share / micro
    passes a step; None if even one does not."""
    share = batch // gpus
    return next(
        (
            m
            for m in range(share, 0, -1)
            if share % m == 0 and step_memory(work, m, shards, passes=share // m).total <= usable_bytes
        ),
        None,
    )


def step_memory(work: memory.Workload, micro_batch: int, shards: int, passes: int) -> memory.DeviceMemory:
    """A GPU's peak in a step of `passes` micro-batches (ftscale.plan.memory.device_memory)."""
    return memory.device_memory(work, micro_batch, shards, on_gpu=True, passes=passes)


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
        most = max(counts or [1])
        one = step_memory(work, 1, fsdp_shards(cluster, most), passes=batch // most)
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
        step_memory(work, micro, fsdp_shards(cluster, gpus), passes=batch // gpus // micro),
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


def mean_example_tokens(config: dict, task_name: str) -> float:
    """An encoded finetuning example at the config's estimate of the tokenized data's mean lengths
    (tasks.<task>.mean_source_tokens, mean_target_tokens; null: the maximum)."""
    task = config["tasks"][task_name]
    source = task.get("mean_source_tokens") or task["max_source_tokens"]
    return source + (task.get("mean_target_tokens") or task["max_target_tokens"]) + ENCODING_TOKENS


def token_work(config: dict, condition: grid.Condition) -> memory.Workload:
    """One packed row of a token budget (finetune.micro_batch_unit tokens) as a workload: as long as
    the longest example (ftscale.train.batches.pack), its logits its tokens x the targets' mean share
    of an example, (mean target + 1) / (mean example + soft prompt), from the config's estimate
    (mean_example_tokens)."""
    task = config["tasks"][condition.task]
    row = example_tokens(config, condition.task) + prompt_length(condition)
    target_share = ((task.get("mean_target_tokens") or task["max_target_tokens"]) + 1) / (
        mean_example_tokens(config, condition.task) + prompt_length(condition)
    )
    return memory.Workload(
        shape_of(config, condition.family, condition.model),
        condition.method,
        condition.pet_size,
        training=True,
        tokens=row,
        logit_tokens=math.ceil(row * target_share),
        packed_attention=config["finetune"].get("attention") == "packed",
    )


def token_budget(config: dict, condition: grid.Condition, plan: JobPlan) -> JobPlan:
    """The plan on its GPUs with micro-batches of a token budget: as many packed rows (token_work) as
    fit one GPU, at most its share of the batch (one example a row), the budget their tokens; at
    worst (every example a row of its own) share / rows passes a step. Rows of shorter examples hold
    fewer tokens, and activations are linear in tokens: the budget bounds them
    (bench/bench_packed_attention.py measures a step against this)."""
    cluster = cluster_options(config)
    work, shards = token_work(config, condition), fsdp_shards(cluster, plan.gpus)
    usable = memory.USABLE_GPU_FRACTION * cluster["gpu_memory_gb"] * memory.GB
    share = config["finetune"]["methods"][condition.method]["batch_size"] // plan.gpus
    for rows in range(share, 0, -1):
        device = step_memory(work, rows, shards, passes=math.ceil(share / rows))
        if device.total <= usable:
            return dataclasses.replace(
                plan, micro_batch_size=None, micro_batch_tokens=rows * work.tokens, memory=device
            )
    raise PlanError(f"finetune {condition.id}: not one packed row of {work.tokens} tokens fits a GPU")


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
        packed_attention=config["finetune"].get("attention") == "packed",
    )
    data = memory.encoded_examples_bytes(
        condition.finetune_examples + task["dev_examples"], example_tokens(config, condition.task)
    )
    after = after or run_group_jobs(config, condition)
    limit = cluster_options(config)["max_runtime_minutes"] - max(job.runtime_minutes for job in after)
    batch = config["finetune"]["methods"][condition.method]["batch_size"]
    plan = plan_job(
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
    if plan.gpus and config["finetune"].get("micro_batch_unit") == "tokens":
        return token_budget(config, condition, plan)
    return plan


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
        weight_bytes=memory.BF16 if config["evaluate"].get("weights_dtype") == "bfloat16" else memory.FP32,
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
    shape, shots = shape_of(config, family, model), grid.few_shot_shots(config, task_name)
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
