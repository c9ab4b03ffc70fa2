"""Pure parts of sharded jobs: how the ranks share a batch, and the command line that launches them."""
import sys

import pytest

from ftscale.runtime import ranks

from ftscale.train import training
from ftscale.train.distributed import World


@pytest.mark.parametrize("size, micro, world", [(8, None, 2), (8, 2, 2), (10, 3, 4), (9, 4, 2), (16, 5, 3)])
def test_ranks_share_the_batch_in_equal_numbers_of_passes(size, micro, world):
    batch = list(range(size))
    shares = [training.rank_micro_batches(batch, micro, World(rank, world)) for rank in range(world)]
    assert [x for share in shares for m in share for x in m] == batch            # the batch, once, in order
    assert len({len(share) for share in shares}) == 1                            # as many passes on every rank
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


@pytest.mark.parametrize("resources, expected", [({"gpu": 0}, (1, 1)), ({}, (1, 1)), ({"gpu": 1, "nodes": 1}, (1, 1)),
                                                 ({"gpu": 4, "nodes": 1}, (4, 1)), ({"gpu": 64, "nodes": 8}, (8, 8))])
def test_ranks_of_a_job_come_from_the_planners_resources(resources, expected):
    assert ranks.ranks_of(resources) == expected


def test_gpus_that_do_not_divide_among_nodes_are_refused():
    with pytest.raises(ValueError, match="gpu=12 is not a whole number of GPUs on each of nodes=8"):
        ranks.ranks_of({"gpu": 12, "nodes": 8})


def test_one_node_runs_torchrun_standalone():
    assert ranks.command("job.pkl", 4) == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=4",
                                           "--standalone", "-m", "ftscale.runtime.ranks", "job.pkl"]


def test_several_nodes_run_one_torchrun_per_node_through_srun():
    argv = ranks.command("job.pkl", 8, nodes=2, first_node="gpu17", job_id="4242")
    assert argv[:5] == ["srun", "--overlap", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert argv[5:9] == [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=8"]
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu17:29500", "--rdzv-id=4242"} <= set(argv)
    assert argv[-3:] == ["-m", "ftscale.runtime.ranks", "job.pkl"]
