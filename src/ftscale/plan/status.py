"""`ftscale status`: where a study stands, from the results tree and Snakemake's own state.

A finetuning run is one (condition, seed) of the grid (ftscale.plan.grid) and is, in this order:
- running: one of its jobs has an incomplete marker (.snakemake/incomplete) and a Snakemake
  process works in the directory (ftscale.runtime.launch); on SLURM that includes jobs queued;
- done: its checkpoint is sealed (a MANIFEST.json, ftscale.runtime.integrity) and its eval.json
  (and transfer.json, where it has one) is written;
- failed: one of its jobs has an incomplete marker and no Snakemake runs here (a killed run), or
  one of the last LOGS_READ Snakemake logs (.snakemake/log) reports an error of one of its jobs;
- pending: none of these.
Runs count per task, axis and method (a condition shared by two axes counts on each).

Hours spent are summed from the jobs' benchmark files (results/<study>/benchmarks/<rule>/...,
Snakemake's `benchmark:`, the first column: wall seconds) times the job's GPUs from its plan
(ftscale.plan.sizing); CPU jobs count one each when the study has no GPUs (cluster.gpus 0). The
plan is `ftscale grid`'s (grid_summary.summarize). A study run on SLURM (.snakemake/slurm_logs) also gets
its live jobs from `squeue`, counted per rule or group and state (a group job's comment names its
rules, not its run). What is read: one stat per run output, the marker
names, the newest Snakemake log, the benchmark files; no checkpoint, no torch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ftscale.plan import grid, sizing
from ftscale.plan import summary as grid_summary
from ftscale.runtime import integrity, launch
from ftscale.runtime.internals.snakemake import snakemake_incomplete_outputs

STATES = ("done", "running", "failed", "pending")
SNAKEMAKE_LOGS = Path(".snakemake") / "log"
SLURM_LOGS = Path(".snakemake") / "slurm_logs"  # the SLURM executor's: the study ran on SLURM
LAST_FAILURES = 10
KILLED = "killed: marked incomplete, and no Snakemake runs here"
LOGS_READ = 3  # Snakemake logs read for job errors: the last runs' (a paper-scale log is megabytes)


@dataclass
class Failure:
    rule: str
    output: str
    log: str
    why: str  # "error in <snakemake log>", or KILLED


@dataclass
class Status:
    study: str
    counts: dict[tuple[str, str, str], dict[str, int]]  # (task, axis, method) -> state -> runs
    runs: dict[tuple[str, int], str]  # (condition id, seed) -> state
    # per benchmark folder (a rule, or `pretrain`, `data`, `analysis` for their rules): GPU-hours
    # (CPU-hours without GPUs), the plan's and the jobs with a benchmark file
    hours_spent: dict[str, float]
    hours_planned: dict[str, float]
    jobs_benchmarked: dict[str, int]
    device: str
    snakemake_running: bool
    failures: list[Failure] = field(default_factory=list)
    slurm: dict[str, int] | None = None  # live SLURM jobs here per state; None: not on SLURM


def newest_snakemake_logs(workdir: Path) -> list[Path]:
    """The last LOGS_READ Snakemake logs, newest first (they are named by their start time)."""
    return sorted((workdir / SNAKEMAKE_LOGS).glob("*.snakemake.log"), reverse=True)[:LOGS_READ]


def job_errors(log_text: str) -> list[tuple[str, str, str]]:
    """(rule, first output, first log) of each failed job a Snakemake log reports: its
    'Error in rule X:' blocks, and the 'rule X:' entries of a group's error ('message: Error in
    group ...'; the SLURM runs' finetune + evaluate + transfer). A block ends at an unindented line."""
    errors: list[list[str]] = []
    in_group, current = False, None
    for line in log_text.splitlines():
        if not line.startswith(" "):
            in_group, current = False, None
        if match := re.match(r"Error in rule (\S+):$", line) or (in_group and re.match(r"\s+rule (\S+):$", line)):
            current = [match.group(1), "", ""]
            errors.append(current)
        elif re.match(r"\s+message: Error in group", line):
            in_group = True
        elif current is not None and (field := re.match(r"\s+(output|log): (.*)$", line)):
            index = 1 if field.group(1) == "output" else 2
            value = field.group(2).replace(" (check log file(s) for error details)", "").split(", ")[0]
            current[index] = current[index] or value
    return [tuple(error) for error in errors]


def slurm_jobs(workdir: Path) -> list[tuple[str, str]]:
    """(state, comment) of this user's SLURM jobs working in workdir; the Snakemake SLURM executor
    puts rule_<rule>_wildcards_<wildcards> in the comment. [] when squeue is absent or slow."""
    if not shutil.which("squeue"):
        return []
    try:
        out = subprocess.run(
            ["squeue", "--me", "--noheader", "--format=%T|%Z|%k"], capture_output=True, text=True, timeout=3
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    jobs = []
    for line in out.splitlines():
        state, directory, comment = (line.split("|", 2) + ["", ""])[:3]
        if Path(directory) == workdir:
            jobs.append((state.strip(), comment.strip()))
    return jobs


def run_of(path: str, results: str) -> tuple[str, int] | None:
    """(condition id, seed) of an output path under results/<study>/finetune, else None."""
    match = re.match(rf"{re.escape(results)}/finetune/({grid.CONDITION_PATTERN})/seed(\d+)/", path + "/")
    return (match.group(1), int(match.group(len(match.groups())))) if match else None


def run_done(run_dir: Path, transfer: bool) -> bool:
    return (
        (run_dir / "checkpoint" / integrity.MANIFEST).is_file()
        and (run_dir / "eval.json").is_file()
        and (not transfer or (run_dir / "transfer.json").is_file())
    )


RUN_OUTPUTS = {
    "checkpoint": "finetune",
    "train.json": "finetune",
    "eval.json": "evaluate",
    "samples.jsonl": "evaluate",
    "transfer.json": "transfer",
}


def rule_of_output(path: str) -> str:
    """The rule of a run's output (by its name), `pretrain` under pretrain/, else '?'."""
    parts = Path(path).parts
    return RUN_OUTPUTS.get(parts[-1], "pretrain" if "pretrain" in parts[2:3] else "?")


def benchmark_seconds(path: Path) -> float:
    """Wall seconds of one job from its Snakemake benchmark file (a header, then `s` first)."""
    try:
        return float(path.read_text().splitlines()[1].split("\t")[0])
    except (OSError, IndexError, ValueError):
        return 0.0


def job_gpus(config: dict, rule: str, key: str, conditions: dict, pretrain_jobs: dict) -> int:
    """GPUs of the job whose benchmark is benchmarks/<rule>/<key>.tsv, from its plan; 0 for CPU jobs."""
    if rule in ("finetune", "evaluate", "transfer"):
        condition = conditions.get(key.rsplit("/seed", 1)[0])
        if condition is None:
            return 0
        if rule == "finetune":
            return sizing.finetune_job(config, condition, sizing.run_group_jobs(config, condition)).gpus
        return (sizing.evaluate_job if rule == "evaluate" else sizing.transfer_job)(config, condition).gpus
    if rule.startswith("pretrain") and key in pretrain_jobs:
        job = pretrain_jobs[key]
        return sizing.pretrain_job(config, job.model, job.tokens, job.rule).gpus
    if rule == "base_transfer":
        task, model = key.split("/", 1)[0], key.split("/", 1)[1].rsplit("-", 1)[0]
        return sizing.transfer_job(config, task_name=task, model=model).gpus
    return 0


def hours_spent(config: dict, results: Path, conditions: dict) -> tuple[dict[str, float], dict[str, int]]:
    """GPU-hours per benchmark folder (CPU-hours, one CPU per job, with cluster.gpus 0) and its
    benchmark files: sum of seconds x GPUs / 3600."""
    on_gpus = bool(sizing.cluster_options(config)["gpus"])
    pretrain_jobs = grid.pretrain_jobs(config, conditions) if on_gpus else {}
    hours: dict[str, float] = {}
    jobs: dict[str, int] = {}
    root = results / "benchmarks"
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        rule, key = path.relative_to(root).parts[0], path.relative_to(root).with_suffix("").as_posix().split("/", 1)[1]
        gpus = job_gpus(config, rule, key, conditions, pretrain_jobs) if on_gpus else 1
        hours[rule] = hours.get(rule, 0.0) + benchmark_seconds(path) * gpus / 3600
        jobs[rule] = jobs.get(rule, 0) + 1
    return hours, jobs


def study_status(config: dict, workdir: Path) -> Status:
    """The status of a validated study config run in workdir (see the module's docstring)."""
    workdir = Path(workdir).resolve()
    results = f"results/{config['study']}"
    conditions = grid.expand_conditions(config)
    running_here = bool(launch.snakemake_processes(workdir))
    slurm = slurm_jobs(workdir) if (workdir / SLURM_LOGS).is_dir() else None

    running: set[tuple[str, int]] = set()  # runs with a job running (on SLURM: submitted)
    failures: list[Failure] = []
    for path in snakemake_incomplete_outputs(workdir):
        if not running_here:
            failures.append(Failure(rule_of_output(path), path, "", KILLED))
        elif (run := run_of(path, results)) is not None:
            running.add(run)
    for log in newest_snakemake_logs(workdir):
        for rule, output, log_path in job_errors(log.read_text(errors="replace")):
            failures.append(Failure(rule, output, log_path, f"error in {log.relative_to(workdir)}"))
    failed, last_failures = set(), {}
    for failure in failures:
        run = run_of(failure.output, results)
        if run is not None:
            failed.add(run)
            if not failure.log and failure.rule != "?":
                failure.log = f"{results}/logs/{failure.rule}/{run[0]}/seed{run[1]}.log"
        last_failures.setdefault((failure.rule, run or failure.output), failure)  # one per job

    runs, counts = {}, {}
    for condition in conditions.values():
        transfer = grid.has_transfer(config, condition)
        for seed in grid.seeds(config):
            key = (condition.id, seed)
            if key in running:
                state = "running"
            elif run_done(workdir / results / "finetune" / condition.id / f"seed{seed}", transfer):
                state = "done"  # also after a failure that a later run redid
            else:
                state = "failed" if key in failed else "pending"
            runs[key] = state
            for axis in sorted(condition.axes):
                row = counts.setdefault((condition.task, axis, condition.method), dict.fromkeys(STATES, 0))
                row[state] += 1

    summary = grid_summary.summarize(config)
    planned: dict[str, float] = {}
    for rule, hours in summary["gpu_hours_per_rule"].items():  # pretrain_<family>_checkpoints: pretrain's
        stage = "pretrain" if rule.startswith("pretrain") else rule
        planned[stage] = planned.get(stage, 0.0) + hours
    spent, benchmarked = hours_spent(config, workdir / results, conditions)
    # a run's failure shows while the run is failed; another job's (data, pretraining) while it is
    # marked incomplete, or its output is missing
    shown = [
        f
        for (_, run), f in last_failures.items()
        if runs.get(run) == "failed" or (run not in runs and (f.why == KILLED or not (workdir / f.output).exists()))
    ]
    return Status(
        config["study"],
        counts,
        runs,
        spent,
        planned,
        benchmarked,
        "GPU" if summary["gpus"] else "CPU",
        running_here,
        shown[:LAST_FAILURES],
        None if slurm is None else _count_states(slurm),
    )


def _count_states(jobs: list[tuple[str, str]]) -> dict[str, int]:
    """Jobs per '<rule or group> <state>' (the comment names a group's rules, not its runs)."""
    counts: dict[str, int] = {}
    for state, comment in jobs:
        key = f"{comment.removeprefix('rule_').split('_wildcards_')[0]} {state.lower()}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def format_status(status: Status) -> str:
    total = {state: sum(row[state] for key, row in status.counts.items()) for state in STATES}
    runs = {state: sum(1 for s in status.runs.values() if s == state) for state in STATES}
    lines = [
        f"study {status.study}: {len(status.runs)} finetuning runs: "
        + ", ".join(f"{runs[s]} {s}" for s in STATES)
        + ("  (Snakemake is running here)" if status.snakemake_running else ""),
        "",
        "runs per task, axis and method (a run shared by two axes counts on each):",
        f"  {'task':22s} {'axis':9s} {'method':7s} " + " ".join(f"{s:>8s}" for s in STATES),
    ]
    for (task, axis, method), row in sorted(status.counts.items()):
        lines.append(f"  {task:22s} {axis:9s} {method:7s} " + " ".join(f"{row[s]:8d}" for s in STATES))
    lines.append(f"  {'total':40s} " + " ".join(f"{total[s]:8d}" for s in STATES))
    device = status.device
    lines += [
        "",
        f"{device}-hours spent (benchmark files) against the plan (ftscale grid):",
        f"  {'stage':28s} {'jobs':>6s} {'spent':>12s} {'planned':>12s}",
    ]
    for rule in dict.fromkeys([*status.hours_planned, *status.hours_spent]):
        planned = status.hours_planned.get(rule)
        lines.append(
            f"  {rule:28s} {status.jobs_benchmarked.get(rule, 0):6d} {status.hours_spent.get(rule, 0.0):12.4g} "
            + (f"{planned:12.4g}" if planned is not None else f"{'-':>12s}")
        )
    lines.append(
        f"  {'total':28s} {sum(status.jobs_benchmarked.values()):6d} {sum(status.hours_spent.values()):12.4g} "
        f"{sum(status.hours_planned.values()):12.4g}"
    )
    if status.slurm is not None:
        lines += [
            "",
            "SLURM jobs here (squeue): "
            + (", ".join(f"{key} {n}" for key, n in sorted(status.slurm.items())) or "none queued or running"),
        ]
    if status.failures:
        lines += ["", "last failures:"]
        lines += [
            f"  {f.rule}: {f.output}\n    {f.why}" + (f"; log: {f.log}" if f.log else "") for f in status.failures
        ]
    return "\n".join(lines)
