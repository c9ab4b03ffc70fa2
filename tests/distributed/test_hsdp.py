"""HSDP on 4 CPU ranks (gloo) laid out as 2 nodes of 2 (LOCAL_WORLD_SIZE 2, as torchrun or srun set it
on two nodes): the models are sharded on a 2 x 2 mesh ("replicate" over nodes, "shard" within one),
and plain SGD steps (an update proportional to the gradient: a gradient off by a factor shows) match
one process's, as FSDP's do (tests/distributed/test_fsdp.py, its tolerances); so do Adafactor's (the
loops' optimizer), whose factored state is laid out on the mesh (distributed.init_adafactor_state)."""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.distributed import each
from tests.distributed.test_fsdp import runs
from tests.distributed.test_sharded import ATOL

pytestmark = pytest.mark.distributed
ROOT = Path(__file__).resolve().parents[2]
KINDS = ("pretrain", "fmt", "lora")
RANK = """
import pickle, sys
from tests.distributed import each
each.sgd_steps(pickle.loads(bytes.fromhex(sys.argv[1])))
"""


def two_nodes_of_two(run_list: list[dict]) -> None:
    """4 ranks, each told it is one of 2 on its node; rank 0's address the rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("FTSCALE_FAULT", "FTSCALE_RUN_PGID")}
    env |= {
        "FTSCALE_DEVICE": "cpu",
        "FTSCALE_WORKER": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "WORLD_SIZE": "4",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }
    argv = [sys.executable, "-c", RANK, pickle.dumps(run_list).hex()]
    ranks = [
        subprocess.Popen(argv, env=env | {"RANK": str(r), "LOCAL_RANK": str(r % 2)}, stderr=subprocess.PIPE, text=True)
        for r in range(4)
    ]
    errors = [rank.communicate(timeout=600)[1] for rank in ranks]
    assert all(rank.returncode == 0 for rank in ranks), "\n".join(e[-2000:] for e in errors)


@pytest.fixture(scope="module")
def hsdp(base, tmp_path_factory):  # noqa: F811
    """Each run as one process and as 4 ranks on a 2 x 2 mesh: name -> (one's results, the mesh's)."""
    hub = tmp_path_factory.mktemp("hub")  # the Hub architectures' runs are not taken here
    one, mesh = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("mesh")
    chosen = [run for run in runs(base, hub, one) if run["out"].stem in KINDS]
    # and the loops' optimizer, Adafactor, whose factored state must be laid out on the 2-D mesh
    chosen += [
        run | {"optimizer": "adafactor", "lr": 1e-2, "out": one / f"adafactor-{run['out'].name}"} for run in chosen[:2]
    ]
    each.sgd_steps(chosen)
    two_nodes_of_two([run | {"out": mesh / run["out"].name} for run in chosen])
    return {run["out"].stem: [torch.load(root / run["out"].name) for root in (one, mesh)] for run in chosen}


@pytest.mark.parametrize("kind", KINDS)
def test_the_mesh_is_nodes_by_ranks_per_node(hsdp, kind):
    one, mesh = hsdp[kind]
    assert one["mesh"] is None
    assert mesh["mesh"][:2] == ((2, 2), ("replicate", "shard"))
    assert mesh["mesh"][2] == ["R", "S(0)"]  # replicated over nodes, dim 0 sharded within one


@pytest.mark.parametrize("kind", [*KINDS, "adafactor-pretrain", "adafactor-fmt"])
def test_hsdp_takes_the_steps_of_one_process(hsdp, kind):
    one, mesh = hsdp[kind]
    np.testing.assert_allclose(mesh["losses"], one["losses"], rtol=0, atol=ATOL)
    assert one["end"].keys() == mesh["end"].keys()
    for name in one["end"]:
        np.testing.assert_allclose(mesh["end"][name].numpy(), one["end"][name].numpy(), rtol=0, atol=ATOL, err_msg=name)
