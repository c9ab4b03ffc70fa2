"""The grid before a GPU-hour is spent: jobs per rule, conditions per task and axis, the conditions
shared by two axes, and the compute of each stage (FLOPs; GPU-hours at a given peak and
utilisation). `ftscale grid CONFIG` prints it and writes results/<study>/grid.json.

FLOPs follow the usual estimates: 6 x parameters x tokens to train, 2 x parameters x tokens to
evaluate. Token counts are upper bounds: every example at its maximum source + target length.
Pure Python on the config and ftscale.grid (no torch), so a laptop previews the paper's grid.
"""
from __future__ import annotations

import math

from ftscale import grid

DEFAULT_GPU_PEAK_TFLOPS = 312.0    # A100 bf16 dense peak
DEFAULT_UTILISATION = 0.4          # model FLOPs utilisation a well-tuned training job reaches


def model_parameters(config: dict, model: str) -> int:
    """Parameters of a model size from the config table: tied embeddings, one key/value head."""
    size, vocab = config["models"][model], config["data"]["tokenizer_vocab_size"]
    attention = size["model_dim"] * size["heads"] * size["head_dim"] * 2 + size["model_dim"] * size["head_dim"] * 2
    feed_forward = 3 * size["model_dim"] * size["ffn_dim"]
    norms = 2 * size["model_dim"]      # two RMSNorm weights per layer, one more at the end
    return size["layers"] * (attention + feed_forward + norms) + size["model_dim"] + vocab * size["model_dim"]


def finetune_steps(config: dict, condition: grid.Condition) -> int:
    """Optimizer steps of one finetuning run: the step cap or the epoch cap, whichever comes first."""
    batch_size = config["finetune"]["methods"][condition.method]["batch_size"]
    epoch_steps = config["finetune"]["max_epochs"] * math.ceil(condition.finetune_examples / batch_size)
    return min(grid.max_steps(config, condition.task, condition.method), epoch_steps)


def finetune_tokens(config: dict, condition: grid.Condition) -> tuple[int, int]:
    """Tokens one finetuning run pushes through the model (training batches plus dev evaluations),
    and the tokens of one batch."""
    task, method = config["tasks"][condition.task], config["finetune"]["methods"][condition.method]
    example = task["max_source_tokens"] + task["max_target_tokens"] + (condition.pet_size or 0)
    steps = finetune_steps(config, condition)
    dev_examples = steps // config["finetune"]["eval_every"] * task["dev_examples"]
    return (steps * method["batch_size"] + dev_examples) * example, method["batch_size"] * example


def evaluate_tokens(config: dict, condition: grid.Condition) -> int:
    """Test loss (one pass over source + target) and greedy decoding (the prompt, then one token per
    step through the KV cache)."""
    task = config["tasks"][condition.task]
    per_example = (2 * task["max_source_tokens"] + task["max_target_tokens"]
                   + config["evaluate"]["max_new_tokens"])
    return task["test_examples"] * per_example


def transfer_tokens(config: dict, task_name: str, zero_shot: bool) -> int:
    """A transfer job's tokens: k-shot prompts (k demonstrations and the query) and their greedy
    steps, and for finetuned runs the zero-shot prompts and steps."""
    task, new = config["tasks"][task_name], config["evaluate"]["max_new_tokens"]
    options = grid.transfer_options(config)
    example = task["max_source_tokens"] + task["max_target_tokens"]
    tokens = sum(options["few_shot_examples"] * ((k + 1) * example + new) for k in options["few_shot_shots"])
    if zero_shot:
        languages = grid.zero_shot_languages(config, task_name)
        tokens += len(languages) * options["zero_shot_examples"] * (task["max_source_tokens"] + new)
    return tokens


def summarize(config: dict, gpu_peak_tflops: float = DEFAULT_GPU_PEAK_TFLOPS,
              utilisation: float = DEFAULT_UTILISATION) -> dict:
    """The grid's size and cost, as grid.json holds it."""
    conditions = grid.expand_conditions(config)
    pretrain = grid.pretrain_runs(config, conditions)
    pretrain_jobs = grid.pretrain_jobs(config, conditions)      # checkpoints of one run are free
    pretrain_rules: dict[str, int] = {}
    for job in pretrain_jobs.values():
        pretrain_rules[job.rule] = pretrain_rules.get(job.rule, 0) + 1
    seeds = len(grid.seeds(config))
    runs = len(conditions) * seeds
    families = sorted({family for family, _, _ in pretrain.values()})
    tasks = sorted({c.task for c in conditions.values()})
    transfer = [c for c in conditions.values() if grid.has_transfer(config, c)]
    base_transfer = grid.base_transfer_runs(config, conditions)
    zero_shot_sets = grid.zero_shot_sets(config, conditions)
    jobs = {"pretrain_corpus": len(families), "tokenizer": len(families), "tokenize_pretrain": len(families),
            "task_data": len(tasks), "tokenize_task": len(tasks), "zero_shot_data": len(zero_shot_sets),
            "tokenize_zero_shot": len(zero_shot_sets), **pretrain_rules, "finetune": runs,
            "evaluate": runs, "transfer": len(transfer) * seeds, "base_transfer": len(base_transfer),
            "aggregate": 1, "fit": 1, "figures": 1}
    jobs = {rule: n for rule, n in jobs.items() if n}      # as Snakemake's job stats, which omit rules with none

    params = {model: model_parameters(config, model) for model in config["models"]}
    flops = {"pretrain": sum(6 * params[job.model] * job.tokens for job in pretrain_jobs.values()),
             "finetune": seeds * sum(6 * params[c.model] * finetune_tokens(config, c)[0] for c in conditions.values()),
             "evaluate": seeds * sum(2 * params[c.model] * evaluate_tokens(config, c) for c in conditions.values()),
             "transfer": seeds * sum(2 * params[c.model] * transfer_tokens(config, c.task, True) for c in transfer)
             + sum(2 * params[model] * transfer_tokens(config, task, False) for task, model, _ in base_transfer)}
    gpu_hours = {stage: f / (gpu_peak_tflops * 1e12 * utilisation) / 3600 for stage, f in flops.items()}

    per_task_axis: dict[str, dict[str, int]] = {}
    for (task, method, axis), count in sorted(grid.axis_counts(conditions).items()):
        per_task_axis.setdefault(task, {}).setdefault(axis, 0)
        per_task_axis[task][axis] += count
    shared = [c.id for c in conditions.values() if len(c.axes) > 1]
    return {
        "study": config["study"], "pretrain_runs": len(pretrain), "pretrain_jobs": len(pretrain_jobs),
        "data_axis": grid.data_axis(config), "conditions": len(conditions), "seeds": seeds,
        "finetune_runs": runs, "jobs": jobs, "total_jobs": sum(jobs.values()),
        "conditions_per_task_axis": per_task_axis, "shared_conditions": len(shared),
        "shared_condition_ids": shared, "parameters": params, "flops": flops,
        "gpu_peak_tflops": gpu_peak_tflops, "utilisation": utilisation,
        "gpu_hours_per_stage": gpu_hours, "gpu_hours": sum(gpu_hours.values()),
    }


def format_summary(summary: dict) -> str:
    lines = [f"study {summary['study']}: {summary['pretrain_runs']} base models from {summary['pretrain_jobs']} "
             f"pretraining runs (data axis: {summary['data_axis']}), {summary['conditions']} "
             f"finetuning conditions x {summary['seeds']} seeds = {summary['finetune_runs']} finetuning runs "
             f"({summary['shared_conditions']} conditions shared by two axes, each run once)", "",
             "jobs per rule:"]
    width = max(map(len, summary["jobs"]))
    lines += [f"  {rule:{width}s} {count:8,d}" for rule, count in summary["jobs"].items()]
    lines += [f"  {'total':{width}s} {summary['total_jobs']:8,d}", "", "conditions per task and axis (shared ones on each):"]
    for task, axes in summary["conditions_per_task_axis"].items():
        lines.append(f"  {task:22s} " + "  ".join(f"{axis} {n}" for axis, n in axes.items()))
    lines += ["", f"compute (at {summary['gpu_peak_tflops']:g} TFLOP/s peak, {summary['utilisation']:.0%} utilisation):"]
    for stage, flops in summary["flops"].items():
        lines.append(f"  {stage:10s} {flops:10.3g} FLOPs  {summary['gpu_hours_per_stage'][stage]:12,.3g} GPU-hours")
    lines.append(f"  {'total':10s} {sum(summary['flops'].values()):10.3g} FLOPs  {summary['gpu_hours']:12,.3g} GPU-hours")
    return "\n".join(lines)
