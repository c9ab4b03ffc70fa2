"""When a sharded model reduces its gradients (distributed.sync_gradients): full-model training after
every micro-batch (deferring would keep the whole model's fp32 gradient unsharded on every rank),
parameter-efficient training after the batch's last micro-batch only. Seen from outside, on one
gloo rank: a deferred reduction leaves the sharded parameters' .grad empty until the last one."""

import os

import pytest
import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from ftscale.train import distributed


@pytest.fixture(scope="module")
def one_rank():
    if dist.is_initialized():  # another test's group (bench_memory's fake one) in this process
        dist.destroy_process_group()
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29000 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def sharded(frozen_first: bool):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    if frozen_first:
        model[0].requires_grad_(False)  # as a PET method freezes the base
    fully_shard(model[1])
    return fully_shard(model)


def grads_after_a_first_micro_batch(model) -> list:
    distributed.sync_gradients(model, last=False)
    model(torch.ones(2, 4)).sum().backward()
    return [p.grad for p in model.parameters() if p.requires_grad]


def test_full_model_training_reduces_after_every_micro_batch(one_rank):
    assert all(g is not None for g in grads_after_a_first_micro_batch(sharded(frozen_first=False)))


def test_parameter_efficient_training_defers_to_the_last_micro_batch(one_rank):
    model = sharded(frozen_first=True)
    assert all(g is None for g in grads_after_a_first_micro_batch(model))
    distributed.sync_gradients(model, last=True)
    model(torch.ones(2, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
