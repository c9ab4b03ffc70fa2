"""configs/paper.yaml: the grid of ../shared/STUDY.md, validated and dry-run (no data, no GPU).

The expected counts are the study's arithmetic written out by hand, not ftscale.plan.grid's: per task
and method, (model sizes + pretraining budgets [+ PET sizes] - shared) x finetuning-data sizes.
"""

import re

import pytest
import yaml

from ftscale import config as study_config
from ftscale.plan import grid, sizing
from tests.workflow.conftest import ROOT, snakemake

pytestmark = pytest.mark.workflow
PAPER = ROOT / "configs" / "paper.yaml"

MODEL_SIZES = 5  # 1B 2B 4B 8B 16B
BUDGETS = {"ende": 5, "enzh": 6}  # pretraining-data sizes of the 1B model
PET_SIZES = 7  # prompt lengths / LoRA ranks
PET_DF = 11  # 8K, 10K, 20K ... 100K
FMT_DF = {"translation_ende": 10, "translation_enzh": 9, "summarization": 9}
FAMILY = {"translation_ende": "ende", "translation_enzh": "enzh", "summarization": "ende"}
SEEDS = 3


def conditions(task: str) -> int:
    # The 1B model on the full corpus (at the default PET size) sits on every axis: counted once.
    budgets = BUDGETS[FAMILY[task]]
    fmt = (MODEL_SIZES + budgets - 1) * FMT_DF[task]
    pet = (MODEL_SIZES + budgets + PET_SIZES - 2) * PET_DF
    return fmt + 2 * pet


def test_paper_config_is_the_study_grid():
    paper = study_config.load(PAPER)
    columns = ("layers", "heads", "head_dim", "ffn_dim", "model_dim")  # (the loaded config's keys are sorted)
    assert {name: tuple(m[c] for c in columns) for name, m in paper["models"].items()} == {
        "1B": (16, 8, 256, 8192, 2048),
        "2B": (20, 10, 256, 10240, 2560),
        "4B": (24, 12, 256, 12288, 3072),
        "8B": (32, 16, 256, 16384, 4096),
        "16B": (40, 20, 256, 20480, 5120),
    }
    assert paper["pretrain"]["budgets"]["ende"] == [b * 10**9 for b in (84, 126, 167, 209, 283)]
    assert paper["pretrain"]["budgets"]["enzh"] == [b * 10**9 for b in (84, 105, 126, 147, 167, 206)]
    methods = paper["finetune"]["methods"]
    assert methods["prompt"]["sizes"] == [50, 100, 150, 200, 300, 400, 600] and methods["prompt"]["default_size"] == 100
    assert methods["lora"]["sizes"] == [4, 8, 16, 32, 48, 64, 128] and methods["lora"]["default_size"] == 4
    assert {name: (m["learning_rate"], m["batch_size"]) for name, m in methods.items()} == {
        "fmt": (1e-3, 128),
        "prompt": (0.3, 16),
        "lora": (1e-2, 16),
    }
    pet_df = [8000] + list(range(10000, 100001, 10000))
    for name, task in paper["tasks"].items():
        assert task["finetune_examples"]["prompt"] == task["finetune_examples"]["lora"] == pet_df
        assert len(task["finetune_examples"]["fmt"]) == FMT_DF[name]
        limits = (256, 256) if task["type"] == "translation" else (512, 256)
        assert (task["max_source_tokens"], task["max_target_tokens"]) == limits
    assert paper["tasks"]["translation_enzh"]["finetune_examples"]["fmt"][-1] == 25_000_000
    assert paper["finetune"]["seeds"] == SEEDS and "16B" in paper["analysis"]["heldout"]["model"]


@pytest.fixture(scope="module")
def slurm_dry_run(tmp_path_factory) -> str:
    """The paper grid dry-run through the SLURM profile (what sbatch would be asked), once."""
    return snakemake(
        tmp_path_factory.mktemp("paper"), "--dry-run", "--profile", str(ROOT / "slurm"), config=PAPER
    ).stdout


def dry_run_jobs(out: str) -> list[tuple[str, str, dict[str, int]]]:
    """(rule, wildcards, integer resources) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n\s*rule ", out)[1:]:
        wildcards, resources = re.search(r"wildcards: (.*)", block), re.search(r"resources: (.*)", block)
        jobs.append(
            (
                block.split(":", 1)[0],
                wildcards.group(1) if wildcards else "",
                {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)(?:,|$)", resources.group(1) if resources else "")},
            )
        )
    return jobs


def test_paper_dry_run_counts_equal_the_study_arithmetic(slurm_dry_run):
    runs = SEEDS * sum(conditions(task) for task in FAMILY)
    assert runs == 3819  # 1,273 conditions x 3 seeds
    # Zero/few-shot: the runs on the model-size and pretraining-data axes (1B on the full corpus
    # shared by both), at every Df, of the translation tasks (zero-shot, 1- and 5-shot) and of
    # summarization (MLSum 1-shot); the few-shot baseline per base model they finetune.
    transfer = SEEDS * sum((MODEL_SIZES + BUDGETS[FAMILY[task]] - 1) * (FMT_DF[task] + 2 * PET_DF) for task in FAMILY)
    assert transfer == 2631  # translation 1,794, summarization 837
    # Pretraining (data_axis: checkpoints): one run per model size and family; the 1B run of each
    # family is its own rule, saving the smaller budgets on the way (test below).
    table = slurm_dry_run.split("Job stats:", 1)[1]
    planned = {
        rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M) if rule not in ("total", "all")
    }
    assert planned == {
        "pretrain_corpus": 2,
        "task_data": 3,
        "zero_shot_data": 10,
        "tokenizer": 2,
        "tokenize_pretrain": 2,
        "tokenize_task": 3,
        "tokenize_zero_shot": 10,
        "pretrain": 2 * (MODEL_SIZES - 1),
        "pretrain_ende_checkpoints": 1,
        "pretrain_enzh_checkpoints": 1,
        "base_transfer": sum(MODEL_SIZES + BUDGETS[FAMILY[task]] - 1 for task in FAMILY),
        "finetune": runs,
        "evaluate": runs,
        "transfer": transfer,
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }


def test_paper_dry_run_lists_the_intermediate_checkpoints_as_outputs_of_the_1b_runs(tmp_path):
    # Every base model finetuned on the pretraining-data axis: 5 budgets (En-De) and 6 (En-Zh) of 1B.
    budgets = yaml.safe_load(PAPER.read_text())["pretrain"]["budgets"]
    targets = [f"results/paper/pretrain/{family}/1B-{tokens}tok" for family in BUDGETS for tokens in budgets[family]]
    out = snakemake(tmp_path, "--dry-run", "--cores", "1", *targets, config=PAPER).stdout
    outputs = {}
    for block in out.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0]
        if rule.startswith("pretrain_") and rule.endswith("_checkpoints"):
            outputs[rule] = re.search(r"^\s*output: (.*)$", block, re.M).group(1).split(", ")
    assert sorted(outputs) == ["pretrain_ende_checkpoints", "pretrain_enzh_checkpoints"]
    for family, count in BUDGETS.items():
        listed = outputs[f"pretrain_{family}_checkpoints"]
        assert len(listed) == count and sorted(listed) == sorted(t for t in targets if f"/{family}/" in t)
    assert "\nrule pretrain:" not in out  # no separate run of a smaller budget


def test_every_paper_job_fits_the_partition_and_a_node(slurm_dry_run):
    """No request above cluster.max_runtime_minutes or node_memory_gb per node, also for a run's
    group (finetune, then evaluate and transfer side by side: Snakemake adds the runtimes)."""
    cluster = study_config.load(PAPER)["cluster"]
    jobs = dry_run_jobs(slurm_dry_run)
    trained = [r for rule, _, r in jobs if rule in ("pretrain", "finetune") or rule.endswith("_checkpoints")]
    assert len(trained) == 10 + 3819 and all(r["gpu"] >= 1 and r["nodes"] >= 1 for r in trained)
    for rule, wildcards, resources in jobs:
        assert resources.get("runtime", 0) <= cluster["max_runtime_minutes"], (rule, wildcards)
        assert resources.get("mem_mb", 0) <= cluster["node_memory_gb"] * 1000, (rule, wildcards)
    group: dict[str, dict[str, dict[str, int]]] = {}
    for rule, wildcards, resources in jobs:
        if rule in ("finetune", "evaluate", "transfer"):
            group.setdefault(wildcards, {})[rule] = resources
    assert len(group) == 3819
    for run, members in group.items():
        after = [members["evaluate"]] + ([members["transfer"]] if "transfer" in members else [])
        assert members["finetune"]["runtime"] + max(r["runtime"] for r in after) <= cluster["max_runtime_minutes"], run
        assert sum(r["mem_mb"] for r in after) <= cluster["node_memory_gb"] * 1000, run
    assert max(r["gpu"] for rule, _, r in jobs if rule == "pretrain") > 1


def test_a_16b_finetune_asks_for_the_planned_gpus(tmp_path):
    paper = study_config.load(PAPER)
    targets = {
        model: f"results/paper/finetune/translation_ende/{model}-283000000000tok/fmt/df100000/seed0/train.json"
        for model in ("1B", "16B")
    }
    out = snakemake(tmp_path, "--dry-run", "--cores", "1", *targets.values(), config=PAPER).stdout
    resources = {
        re.search(r"condition=translation_ende/(\w+)-", wildcards).group(1): r
        for rule, wildcards, r in dry_run_jobs(out)
        if rule == "finetune"
    }
    assert set(resources) == {"1B", "16B"}
    for model, got in resources.items():
        planned = sizing.finetune_job(
            paper, grid.expand_conditions(paper)[f"translation_ende/{model}-283000000000tok/fmt/df100000"]
        )
        assert (got["gpu"], got["nodes"], got["runtime"]) == (planned.gpus, planned.nodes, planned.runtime_minutes)
        assert got["mem_mb"] == planned.host_memory_mb
    assert resources["16B"]["gpu"] > resources["1B"]["gpu"] >= 1
    assert resources["16B"]["mem_mb"] > resources["1B"]["mem_mb"]


class Resources(dict):
    """A job's resources as the SLURM plugins read them (job.resources.get(key), job.resources.key)."""

    __getattr__ = dict.get


def slurm_commands(resources: dict, threads: int) -> tuple[str, str | None]:
    """(sbatch options, the jobstep's wrapper or None) that the installed SLURM plugins make of a job's
    resources: snakemake_executor_plugin_slurm's submit string, and the jobstep plugin's choice
    between `srun -n1 ...` around the job and none (resource `mpi`: the job starts its own step)."""
    from types import SimpleNamespace

    import snakemake_executor_plugin_slurm_jobstep as jobstep
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = SimpleNamespace(resources=Resources(resources), threads=threads)
    params = {
        "run_uuid": "ID",
        "slurm_logfile": "LOG",
        "comment_str": "C",
        "account": "",
        "partition": "",
        "workdir": "",
    }
    sbatch = get_submit_command(job, params) + set_gres_string(job)
    wrapper = (
        None
        if "mpi" in resources
        else " ".join(
            [
                "srun -n1",
                jobstep.get_cpu_setting(job, bool(resources.get("gpu"))),
                jobstep.get_gpu_setting(job),
                jobstep.get_node_setting(job),
            ]
        )
    )
    return sbatch, wrapper


def test_the_16b_pretraining_job_asks_sbatch_for_one_task_per_gpu_on_whole_nodes_and_starts_its_own_step(tmp_path):
    """What the planner gives the paper's 64-GPU job is what sbatch is asked (--nodes, --ntasks,
    GPUs, CPUs, memory per node), and the jobstep plugin does not wrap it in `srun -n1 --nodes=8`
    (which SLURM cuts to one node)."""
    paper = study_config.load(PAPER)
    target = "results/paper/pretrain/ende/16B-283000000000tok"
    out = snakemake(tmp_path, "--dry-run", "--profile", str(ROOT / "slurm"), target, config=PAPER).stdout
    block = next(b for b in re.split(r"\n\s*rule ", out)[1:] if f"output: {target}" in b)
    resources = {
        k: int(v) if v.isdigit() else v
        for k, v in re.findall(r"(\w+)=([^,\s]*)(?:,|$)", re.search(r"resources: (.*)", block).group(1))
    }
    planned = sizing.pretrain_job(paper, "16B", 283000000000)
    per_node = planned.gpus // planned.nodes
    assert planned.nodes > 1 and per_node == paper["cluster"]["gpus_per_node"]
    sbatch, wrapper = slurm_commands(resources, paper["pretrain"]["threads"])
    options = set(sbatch.split())
    assert {
        f"--nodes={planned.nodes}",
        f"--ntasks={planned.gpus}",
        "--ntasks-per-gpu=1",
        f"--gpus={planned.gpus}",
        f"--cpus-per-task={planned.cpus // per_node}",
        f"--signal=USR1@{planned.runtime_minutes * 60 - int(planned.segment_seconds)}",
    } <= options
    assert f" --mem {planned.host_memory_mb} " in f"{sbatch} " and f" -t {planned.runtime_minutes} " in sbatch
    assert wrapper is None
    from ftscale.runtime import ranks

    assert ranks.layout(resources) == ranks.Layout(per_node, planned.nodes, planned.cpus // per_node, True)


def planned_jobs(workdir, targets: list[str]) -> list:
    """The jobs Snakemake plans for targets of the paper grid (its DAG, as a run builds it; nothing runs)."""
    from pathlib import Path

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(),
            storage_settings=StorageSettings(),
            config_settings=ConfigSettings(configfiles=[PAPER]),
            snakefile=ROOT / "Snakefile",
            workdir=Path(workdir),
        )
        workflow = workflow_api.dag(
            dag_settings=DAGSettings(targets=set(targets), forceall=True)
        ).workflow_api._workflow
        workflow._executor_plugin = ExecutorPluginRegistry().get_plugin("dryrun")  # a dry run: groups apply
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        return list(workflow.dag.jobs)


def test_evaluation_shares_only_a_one_gpu_finetunes_allocation(tmp_path):
    """Group `run` (one submission: finetune, then evaluate and transfer) for a one-GPU finetune; a
    multi-GPU finetune's evaluation is a job of its own, not 63 idle GPUs while one evaluates."""
    one_gpu, many = (
        "summarization/1B-283000000000tok/lora-4/df8000",
        "translation_ende/16B-283000000000tok/fmt/df100000",
    )
    jobs = planned_jobs(
        tmp_path,
        [
            f"results/paper/finetune/{c}/seed0/{out}"
            for c in (one_gpu, many)
            for out in ("eval.json", "transfer.json")
            if out == "eval.json" or c == many
        ],
    )
    groups = {
        (job.rule.name, job.wildcards_dict["condition"]): (job.group, job.resources.get("gpu"))
        for job in jobs
        if job.rule.name in ("finetune", "evaluate", "transfer")
    }
    assert groups == {
        ("finetune", one_gpu): ("run", 1),
        ("evaluate", one_gpu): ("run", 1),
        ("finetune", many): (None, 64),
        ("evaluate", many): (None, 1),
        ("transfer", many): (None, 1),
    }


def test_the_data_jobs_ask_sbatch_for_their_planned_memory_runtime_and_cpus(tmp_path):
    """Each data rule's request is ftscale.plan.data_jobs' plan from the config (not the profile's
    default 4 GB / 60 min): the pretraining stages by family, the task stages by task; a tokenizing
    job's threads (its encoder's) are its planned CPUs, more than one for the paper's corpus."""
    from ftscale.plan import data_jobs

    paper = study_config.load(PAPER)
    targets = [
        "results/paper/data/tokens/pretrain_ende/train",
        "results/paper/data/tokens/summarization/train",
        "results/paper/data/tokens/translation_enzh/zero_shot_fr",
    ]
    # --cores: threads as the job has them (a SLURM job's Snakemake runs with --cores all); unset, a dry run shows one
    cores = ("--cores", str(paper["cluster"]["data_cpus"]))
    out = snakemake(tmp_path, "--dry-run", "--profile", str(ROOT / "slurm"), *cores, *targets, config=PAPER).stdout
    jobs = {rule: (wildcards, r) for rule, wildcards, r in dry_run_jobs(out)}
    by = {
        "pretrain_corpus": {"family": "ende"},
        "tokenizer": {"family": "ende"},
        "tokenize_pretrain": {"family": "ende"},
        "task_data": {"task": "summarization"},
        "tokenize_task": {"task": "summarization"},
        "zero_shot_data": {"task": "translation_enzh"},
        "tokenize_zero_shot": {"task": "translation_enzh"},
    }
    assert set(by) <= set(jobs)
    blocks = {block.split(":", 1)[0]: block for block in re.split(r"\n\s*rule ", out)[1:]}
    for rule, wildcards in by.items():
        planned, (_, resources) = data_jobs.data_job(paper, rule, **wildcards), jobs[rule]
        assert (resources["mem_mb"], resources["runtime"], resources.get("cpus_per_task")) == (
            planned.host_memory_mb,
            planned.runtime_minutes,
            planned.cpus,
        ), rule
        printed = re.search(r"threads: (\d+)", blocks[rule])  # Snakemake prints threads past one
        threads = int(printed.group(1)) if printed else 1
        assert threads == planned.cpus, rule
        sbatch, _ = slurm_commands(resources, threads)
        assert f" --mem {planned.host_memory_mb} " in f"{sbatch} " and f" -t {planned.runtime_minutes} " in sbatch
        assert f"--cpus-per-task={planned.cpus}" in sbatch, rule
        assert "--gpus" not in sbatch, rule
    assert data_jobs.data_job(paper, "tokenize_pretrain", family="ende").cpus > 1
    memory = {rule: jobs[rule][1]["mem_mb"] for rule in by}  # not the profile's default 4,000 MB each
    assert memory["task_data"] > 4000 > memory["tokenize_task"] == memory["tokenize_pretrain"]  # the two stream
