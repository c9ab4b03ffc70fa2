"""`ftscale grid`'s summary of a study before a GPU-hour is spent (results/<study>/grid.json): jobs per
rule, conditions per task and axis, the compute of each stage (FLOPs: 6 x parameters x tokens to
train, 2 x parameters x tokens to evaluate; GPU-hours at cluster.flops_per_second), the data jobs'
sizes, and what the jobs ask of the cluster per rule, from every job's plan (ftscale.plan.sizing).
"""

from __future__ import annotations

from ftscale.plan import data_jobs, grid, memory, sizing, timing


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
    params = {model: sizing.model_parameters(config, model, family) for family, model, _ in pretrain.values()}
    params = {model: params[model] for model in sorted(params, key=params.get)}
    flops = {
        "pretrain": sum(6 * params[job.model] * job.tokens for job in pretrain_jobs.values()),
        "finetune": seeds * sum(6 * params[c.model] * sizing.finetune_tokens(config, c) for c in conditions.values()),
        "evaluate": seeds * sum(2 * params[c.model] * sizing.evaluate_tokens(config, c) for c in conditions.values()),
        "transfer": seeds * sum(2 * params[c.model] * sizing.transfer_tokens(config, c.task, True) for c in transfer)
        + sum(2 * params[model] * sizing.transfer_tokens(config, task, False) for task, model, _ in base_transfer),
    }
    cluster, plans = sizing.cluster_options(config), sizing.job_plans(config)
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


def requests_per_rule(plans: list[sizing.JobPlan]) -> dict[str, dict[str, float]]:
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
        f"data jobs (CPU: ftscale.plan.data_jobs; speeds measured on {data_jobs.MEASURED_ON}), the largest request per rule:",
        f"  {'rule':{width}s} {'jobs':>6s} {'input GB':>13s} {'host GB':>8s} {'minutes':>8s} CPUs",
    ]
    for rule, data in summary["data_jobs"].items():
        lines.append(
            f"  {rule:{width}s} {summary['jobs'].get(rule, len(data['jobs'])):6,d} {data['max_input_gb']:13,.1f} "
            f"{data['max_host_memory_gb']:8,.1f} {data['max_runtime_minutes']:8,d} {data['cpus']:4d}"
        )
        lines += [f"    {label}: needs {over}: asked at the limit" for label, over in data["over"].items()]
    return "\n".join(lines)
