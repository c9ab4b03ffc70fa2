"""HSDP for jobs on several nodes: the mesh the ranks build (nodes x ranks per node) and the memory
planner's per-GPU figure, whose weights, gradients and optimizer state are sharded over one node's
GPUs, not over the job's (tests/distributed/test_hsdp.py runs the mesh on 4 CPU ranks)."""

import pytest

from ftscale import config as study_config
from ftscale.plan import grid, memory, sizing
from ftscale.train.distributed import World, mesh_shape

from .test_plan import PAPER


def test_the_mesh_is_nodes_by_ranks_per_node():
    assert mesh_shape(World(0, 16, 0, 8)) == (2, 8)
    assert mesh_shape(World(0, 4, 0, 2)) == (2, 2)
    assert mesh_shape(World(0, 8, 0, 8)) is None  # one node: FSDP over every rank
    assert mesh_shape(World(0, 8)) is None  # LOCAL_WORLD_SIZE unknown: one node
    with pytest.raises(ValueError, match="not whole nodes of 4"):
        mesh_shape(World(0, 6, 0, 4))


def test_a_multi_node_job_plans_its_memory_sharded_over_one_node():
    paper = study_config.load(PAPER)
    per_node, family = paper["cluster"]["gpus_per_node"], next(iter(paper["families"]))
    jobs = {model: sizing.pretrain_job(paper, model, grid.full_budget(paper, family)) for model in paper["models"]}
    model, job = next((m, j) for m, j in jobs.items() if j.nodes > 1)
    shape = memory.Shape.of(paper, model)
    # weights: fp32 over the node's GPUs (8), not over the job's (16 or more)
    assert job.gpus > per_node and sizing.fsdp_shards(paper["cluster"], job.gpus) == per_node
    assert job.memory.weights == pytest.approx(memory.weights_bytes(shape, "pretrain", None, per_node))
    assert job.memory.weights > memory.weights_bytes(shape, "pretrain", None, job.gpus)
    assert sizing.fsdp_shards(paper["cluster"], 4) == 4  # within a node: every GPU a shard
