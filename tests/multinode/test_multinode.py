"""Jobs across the two nodes of the live local SLURM cluster (tests/slurm/local-cluster.sh: two
slurmd on this machine, a GPU each in name only): a plain two-node job puts one task on each node;
a two-node pretraining and finetuning go through `snakemake --profile` as 2 gloo ranks, one per
node (ftscale.runtime.ranks: one srun task per rank), to the results of one process within the
distributed tests' tolerances (tests/distributed); a two-node pretraining killed mid-run is
submitted again and resumes on both nodes to the uninterrupted result.

Needs root and apt, as tests/slurm/ does (same cluster, same skip outside CI, none under CI=true)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

# the tolerances of 2 ranks against one process (they add gradients in another order)
from tests.distributed.test_sharded import RTOL, assert_close_weights, weights, without_timing
from tests.slurm.test_slurm import CONFIG, cluster, through_slurm  # noqa: F401 - cluster: the fixture
from tests.workflow.conftest import snakemake, write_config

pytestmark = pytest.mark.multinode
STUDY = "multinode"
PRETRAIN = f"results/{STUDY}/pretrain/ende/m1-8192tok"
RUN = f"results/{STUDY}/finetune/translation_ende/m1-8192tok/fmt/df64/seed0"
DATA = f"results/{STUDY}/data"
LOG = f"results/{STUDY}/logs/pretrain/ende/m1-8192tok.log"
# Every training job a GPU per node, on two nodes; a 30-minute request: segments (ending at the
# request less 10 minutes) far longer than these jobs, however loaded the machine. Host memory per
# node well under a node's share of this machine's (the planner's estimate is for real models).
TWO_NODES = {
    "gpus": 2,
    "gpus_per_node": 1,
    "max_gpus_per_job": 2,
    "min_runtime_minutes": 30,
    "mem_mb": {"pretrain": 1500, "finetune": 1500, "evaluate": 1500},
}


def nodes() -> list[str]:
    return subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, check=True).stdout.split()


def test_a_two_node_job_runs_a_task_on_each_node(cluster, tmp_path):  # noqa: F811
    out = tmp_path / "job.out"
    job = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--nodes=2",
            "--gpus=2",
            "--ntasks-per-node=1",
            "--mem=100",
            "-t",
            "5",
            "-o",
            str(out),
            "--wrap",
            "srun bash -c 'echo $SLURM_PROCID $SLURMD_NODENAME'",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert job.returncode == 0, job.stdout + job.stderr + (out.read_text() if out.exists() else "")
    tasks = sorted(line.split() for line in out.read_text().splitlines())
    assert tasks == [["0", nodes()[0]], ["1", nodes()[1]]], out.read_text()


def tasks_launched(job_id: int) -> dict[str, int]:
    """Tasks each node's slurmd launched in the job's steps (srun, not the batch script), from its log."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    log = re.search(r"^SlurmdLogFile\s*=\s*(\S+)", config, re.M).group(1)
    return {
        node: len(re.findall(rf"launch task StepId={job_id}\.\d+ ", open(log.replace("%n", node)).read()))
        for node in nodes()
    }


@pytest.fixture(scope="module")
def two_node_study(cluster, tmp_path_factory):  # noqa: F811
    """The tests' SLURM study with a cluster of one GPU per node: m1's pretraining and an FMT run
    each on both nodes (its evaluation on one GPU, a job of its own); and the one-process run,
    locally. The local run goes first; its data stage (no GPUs, no nodes: tests/slurm covers
    it through SLURM) is copied, times kept, so that only the two-node jobs go through SLURM.
    Returns (directory, local workdir, SLURM workdir, the last job before, failure or "")."""
    root = tmp_path_factory.mktemp("multinode")
    config = yaml.safe_load(CONFIG.read_text()) | {"study": STUDY}
    # 16 pretraining steps, as tests/distributed (over more, Adam's updates of rarely seen embeddings
    # drift apart past its tolerances: 6e-4 after 64 steps), all logged; states for the requeue test
    config["pretrain"] |= {"budgets": {"ende": [8192]}, "log_every": 1, "save_every": 4}
    write_config(root / "one.yaml", config)
    write_config(root / "two.yaml", config | {"cluster": TWO_NODES})
    snakemake(root / "local", "--cores", "2", PRETRAIN, f"{RUN}/eval.json", config=root / "one.yaml")
    shutil.copytree(root / "local" / DATA, root / "slurm" / DATA)
    since = newest_job()
    run = through_slurm(root / "slurm", root / "two.yaml", PRETRAIN, f"{RUN}/eval.json", env={"FTSCALE_DEVICE": "cpu"})
    return root, root / "local", root / "slurm", since, "" if run.returncode == 0 else failure(run, root / "slurm")


def failure(run: subprocess.CompletedProcess, workdir) -> str:
    """Snakemake's output and the end of each SLURM job's log (where srun says why a step failed)."""
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join([(run.stdout + run.stderr)[-3000:], *(f"---- {log}\n{log.read_text()[-1500:]}" for log in logs)])


def all_jobs() -> list[list[str]]:
    """Job id, comment, nodes, state and working directory of each job SLURM still shows (MinJobAge)."""
    lines = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i %k %D %T %Z"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [line.split() for line in lines]


def newest_job() -> int:
    return max((int(job[0]) for job in all_jobs()), default=0)


def jobs_of(workdir, since: int) -> list[tuple[int, str, int, str]]:
    """(job id, rule, nodes, state) of each SLURM job after job `since` run in workdir, oldest first
    (the SLURM plugin's job comment: rule_<rule>_wildcards_<values>)."""
    return sorted(
        (int(job_id), comment.removeprefix("rule_").split("_wildcards_")[0], int(count), state)
        for job_id, comment, count, state, directory in all_jobs()
        if directory == str(workdir) and int(job_id) > since
    )


def test_two_node_pretraining_and_finetuning_through_the_profile_equal_one_process(two_node_study):
    _, local, remote, since, failed = two_node_study
    assert not failed, failed[-4000:]
    jobs = jobs_of(remote, since)
    assert sorted((comment, count) for _, comment, count, _ in jobs) == [
        ("evaluate", 1),
        ("finetune", 2),
        ("pretrain", 2),
    ], jobs
    for job_id, rule, count, _ in jobs:
        if count == 2:  # each node ran a task of the job (a rank)
            assert min(tasks_launched(job_id).values()) >= 1, (rule, tasks_launched(job_id))

    pre = [json.loads((root / PRETRAIN / "pretrain.json").read_text()) for root in (local, remote)]
    assert [h["step"] for h in pre[1]["history"]] == [h["step"] for h in pre[0]["history"]] == list(range(1, 17))
    np.testing.assert_allclose(
        [h["train_loss"] for h in pre[1]["history"]], [h["train_loss"] for h in pre[0]["history"]], rtol=RTOL
    )
    assert pre[1]["val_loss"] == pytest.approx(pre[0]["val_loss"], rel=RTOL)
    assert_close_weights(local / PRETRAIN, remote / PRETRAIN)

    train = [json.loads((root / RUN / "train.json").read_text()) for root in (local, remote)]
    assert (train[1]["steps"], train[1]["best_step"]) == (train[0]["steps"], train[0]["best_step"])
    for key in ("train_loss", "dev_loss"):
        np.testing.assert_allclose(
            [h[key] for h in train[1]["history"]], [h[key] for h in train[0]["history"]], rtol=RTOL
        )
    assert_close_weights(local / RUN / "checkpoint", remote / RUN / "checkpoint")
    evaluated = [json.loads((root / RUN / "eval.json").read_text()) for root in (local, remote)]
    assert evaluated[1]["test_loss"] == pytest.approx(evaluated[0]["test_loss"], rel=RTOL)
    assert [s["hypothesis"] for s in evaluated[1]["samples"]] == [s["hypothesis"] for s in evaluated[0]["samples"]]


def test_two_node_pretraining_killed_mid_run_resumes_on_both_nodes(two_node_study):
    """Both ranks killed (SIGKILL) right after saving their sharded state at step 8 of 16: the job
    fails, Snakemake submits it again (--retries 1), and the new two-node job resumes at step 8 to
    the uninterrupted two-node run's result, bitwise (two runs of the same 2 ranks are equal)."""
    root, _, uninterrupted, _, failed = two_node_study
    assert not failed, failed[-4000:]
    workdir = root / "requeue"
    shutil.copytree(root / "local" / DATA, workdir / DATA)
    since = newest_job()
    run = through_slurm(
        workdir,
        root / "two.yaml",
        "--retries",
        "1",
        PRETRAIN,
        env={"FTSCALE_DEVICE": "cpu", "FTSCALE_FAULT": "resume:8"},
    )
    assert run.returncode == 0, failure(run, workdir)
    jobs = jobs_of(workdir, since)
    assert [(comment, count, state) for _, comment, count, state in jobs] == [
        ("pretrain", 2, "FAILED"),
        ("pretrain", 2, "COMPLETED"),
    ], jobs
    for job_id, _, _, _ in jobs:
        assert min(tasks_launched(job_id).values()) >= 1, (job_id, tasks_launched(job_id))
    log = (workdir / LOG).read_text()  # the second job's
    assert re.search(r"resumed from \S+ at step 8\b", log), log[-3000:]
    summaries = [json.loads((w / PRETRAIN / "pretrain.json").read_text()) for w in (workdir, uninterrupted)]
    assert [without_timing(s) for s in summaries] == [without_timing(summaries[1])] * 2
    assert {k: v.tobytes() for k, v in weights(workdir / PRETRAIN).items()} == {
        k: v.tobytes() for k, v in weights(uninterrupted / PRETRAIN).items()
    }
