"""Pure parts of sharded jobs: how the ranks share a batch, and the command line that launches them."""

import os
import sys

import pytest

from ftscale.runtime import ranks
from ftscale.train import training
from ftscale.train.distributed import World


@pytest.mark.parametrize("size, micro, world", [(8, None, 2), (8, 2, 2), (10, 3, 4), (9, 4, 2), (16, 5, 3)])
def test_ranks_share_the_batch_in_equal_numbers_of_passes(size, micro, world):
    batch = list(range(size))
    shares = [training.rank_micro_batches(batch, micro, World(rank, world)) for rank in range(world)]
    assert [x for share in shares for m in share for x in m] == batch  # the batch, once, in order
    assert len({len(share) for share in shares}) == 1  # as many passes on every rank
    assert all(1 <= len(m) <= (micro or size) for share in shares for m in share)
    sizes = [sum(map(len, share)) for share in shares]
    assert max(sizes) - min(sizes) <= 1


def test_one_rank_cuts_micro_batches_as_before():
    batch = list(range(10))
    assert training.rank_micro_batches(batch, 4, World()) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert training.rank_micro_batches(batch, None, World()) == [batch]


def test_a_batch_too_small_for_the_ranks_passes_is_refused():
    with pytest.raises(ValueError, match="a batch of 5 cannot be shared by 4 ranks in passes of at most 1"):
        training.rank_micro_batches(list(range(5)), 1, World(0, 4))


@pytest.mark.parametrize(
    "resources, expected",
    [
        ({"gpu": 0}, ranks.Layout()),
        ({}, ranks.Layout()),
        ({"gpu": 1, "nodes": 1}, ranks.Layout()),
        ({"gpu": 4, "nodes": 1, "cpus_per_task": 16}, ranks.Layout(4, 1, None, True)),
        ({"gpu": 64, "nodes": 8, "tasks": 64, "cpus_per_task": 4}, ranks.Layout(8, 8, 4, True)),
        ({"gpu": 0, "nodes": 2, "tasks": 2}, ranks.Layout(1, 2, None, False)),
    ],
)  # the live test cluster: no GPUs
def test_ranks_of_a_job_come_from_the_planners_resources(resources, expected):
    assert ranks.layout(resources) == expected


def test_ranks_that_do_not_divide_among_nodes_are_refused():
    with pytest.raises(ValueError, match="tasks=12 is not a whole number of ranks on each of nodes=8"):
        ranks.layout({"gpu": 12, "nodes": 8, "tasks": 12})
    with pytest.raises(ValueError, match="gpu=12 is not a whole number of GPUs on each of nodes=8"):
        ranks.slurm_resources(12, 8, 64)


def test_a_multi_node_job_asks_for_one_task_per_gpu_and_leaves_the_step_to_itself():
    # the jobstep plugin runs a job with `mpi` unwrapped; the SLURM plugin turns tasks and tasks_per_gpu
    # into sbatch --ntasks=64 --ntasks-per-gpu=1; the node's 32 CPUs are split among its 8 ranks
    # and SLURM's warning 300 s before the end reaches its ranks (the training loop saves and exits 75)
    assert ranks.slurm_resources(64, 8, 32, 300) == {
        "nodes": 8,
        "cpus_per_task": 4,
        "mpi": "srun",
        "tasks": 64,
        "tasks_per_gpu": 1,
        "slurm_extra": "--signal=USR1@300",
    }
    assert ranks.layout({"gpu": 64, **ranks.slurm_resources(64, 8, 32)}) == ranks.Layout(8, 8, 4, True)
    # one node: one task of all its CPUs, wrapped by the plugin in `srun -n1`; torchrun starts the ranks,
    # and SLURM's warning comes as across nodes (tests/distributed/test_sharded.py: what it reaches there)
    assert ranks.slurm_resources(4, 1, 16, 300) == {
        "nodes": 1,
        "cpus_per_task": 16,
        "mpi": None,
        "tasks": None,
        "tasks_per_gpu": None,
        "slurm_extra": "--signal=USR1@300",
    }
    assert ranks.slurm_resources(1, 1, 16, 300)["slurm_extra"] is None  # one GPU: its deadline serves


def test_one_node_runs_torchrun_standalone():
    assert ranks.command("job.pkl", ranks.Layout(4)) == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=4",
        "--standalone",
        "-m",
        "ftscale.runtime.ranks",
        "job.pkl",
    ]


def test_several_nodes_run_one_srun_task_per_rank_with_every_option_explicit():
    argv = ranks.command("job.pkl", ranks.Layout(8, 2, 4, True))
    assert argv == [
        "srun",
        "--nodes=2",
        "--ntasks=16",
        "--ntasks-per-node=8",
        "--cpus-per-task=4",
        "--gpus-per-node=8",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        "ftscale.runtime.ranks",
        "job.pkl",
    ]


def test_the_port_comes_from_the_job_id():
    assert ranks.rendezvous_port("4242") == 24242 and ranks.rendezvous_port("123456") == 23456
    assert ranks.rendezvous_port("4242") != ranks.rendezvous_port("4243")


def test_a_rank_started_by_srun_takes_its_place_from_slurm(tmp_path, monkeypatch):
    fake_bin(tmp_path, monkeypatch, "scontrol", "echo node7; echo node8")  # `scontrol show hostnames`
    env = {
        "SLURM_PROCID": "9",
        "SLURM_NTASKS": "16",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_NODELIST": "node[7-8]",
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_NUM_NODES": "2",
    }
    assert ranks.rank_environment(env) == {
        "RANK": "9",
        "WORLD_SIZE": "16",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "node7",
        "MASTER_PORT": "24242",
        "LOCAL_WORLD_SIZE": "8",  # 16 tasks on 2 nodes: the HSDP mesh's ranks per node
    }
    assert ranks.rank_environment({**env, "RANK": "3"}) == {}  # under torchrun: torchrun's
    assert ranks.rank_environment({**env, "MASTER_ADDR": "10.0.0.7"})["MASTER_ADDR"] == "10.0.0.7"


# What the jobstep plugin's own `srun -n1 --cpus-per-task=16 --gpus=16 --nodes=2` step (the old launch)
# or an sbatch batch script leaves in the environment: srun reads these as its defaults.
OUTER_STEP = {
    "SLURM_JOB_ID": "4242",
    "SLURM_NTASKS": "1",
    "SLURM_NPROCS": "1",
    "SLURM_NNODES": "2",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_CPUS_PER_TASK": "16",
    "SLURM_CPUS_ON_NODE": "16",
    "SLURM_TRES_PER_TASK": "cpu:16",
    "SLURM_TASKS_PER_NODE": "1",
    "SLURM_JOB_NODELIST": "node[7-8]",
    "SLURM_STEP_ID": "0",
    "SLURM_GPUS": "16",
    "SLURM_MEM_PER_NODE": "64000",
    "SRUN_CPUS_PER_TASK": "16",
    "SBATCH_EXPORT": "ALL",
}


def fake_bin(tmp_path, monkeypatch, name, body):
    """An executable `name` first on PATH running the shell `body`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
    (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_the_nested_srun_gets_none_of_the_outer_steps_task_cpu_or_tres_variables(tmp_path, monkeypatch):
    # `srun` here records the environment it is started with (the launch under test is ranks.run)
    fake_bin(tmp_path, monkeypatch, "srun", f"env > {tmp_path}/srun.env")
    fake_bin(tmp_path, monkeypatch, "scontrol", "echo node7; echo node8")
    for name, value in OUTER_STEP.items():
        monkeypatch.setenv(name, value)
    ranks.run("json:dumps", ranks.Layout(8, 2, 4, True), log=str(tmp_path / "job.log"))
    seen = dict(line.split("=", 1) for line in (tmp_path / "srun.env").read_text().splitlines() if "=" in line)
    leaked = sorted(name for name in seen if name.startswith(("SLURM_", "SRUN_", "SBATCH_")) and name != "SLURM_JOB_ID")
    assert leaked == []
    assert seen["SLURM_JOB_ID"] == "4242"  # the allocation srun starts the step in
