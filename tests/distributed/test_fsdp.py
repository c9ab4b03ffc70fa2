"""FSDP2 as the training loops use it (ftscale.train.distributed.shard), on 2 CPU ranks (gloo) against
one process, under plain SGD: an update proportional to the gradient, where Adafactor (the loops'
optimizer, tests/distributed/test_sharded.py) hides a gradient off by a constant factor.

Tolerances as test_sharded.py's (RTOL, ATOL; the figures measured are in its docstring)."""
import numpy as np
import pytest
import torch

from tests.distributed import each
from tests.distributed.test_sharded import ATOL, RTOL, finished, two_ranks
from tests.unit.test_resume import SIZE, base  # noqa: F401 - the fixture: a tiny base model and task

pytestmark = pytest.mark.distributed
STEPS = 3


def runs(base, root):  # noqa: F811
    """Pretraining a new model (2 passes of 2 windows per rank), and finetuning the base model: FMT (2
    passes of 1 example per rank), LoRA (its parameters in the layers' units) and prompt tuning (its
    soft prompt in the root unit)."""
    pretraining = dict(kind="pretrain", size=SIZE, vocab_size=300, seq_len=32, train_tokens=base / "stream" / "tokens.npy",
                       batch_size=8, micro_batch_size=2, lr=1.0, seed=0, steps=STEPS, out=root / "pretrain.pt")
    finetuning = [dict(kind=method, pet_size=pet, base_dir=base / "base", train_dir=base / "task" / "train",
                       batch_size=4, micro_batch_size=micro, lr=1.0, seed=3, steps=STEPS, out=root / f"{method}.pt")
                  for method, pet, micro in (("fmt", None, 1), ("lora", 2, None), ("prompt", 4, None))]
    return [pretraining, *finetuning]


@pytest.fixture(scope="module")
def sgd(base, tmp_path_factory):  # noqa: F811
    """Each run as one process and as 2 ranks (one launch): kind -> (one process's, the ranks' results)."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    each.sgd_steps(runs(base, one))
    finished(two_ranks("tests.distributed.each:sgd_steps", {"runs": runs(base, two)}))
    return {run["kind"]: (torch.load(run["out"]), torch.load(two / run["out"].name)) for run in runs(base, one)}


def assert_close(one: dict, two: dict, atol: float):
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name].numpy(), one[name].numpy(), rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("kind", ["pretrain", "fmt", "lora", "prompt"])
def test_two_ranks_take_the_sgd_steps_of_one_process(sgd, kind):
    """The ranks' gradients add up to the whole batch's in every FSDP unit: the decoder layers' and
    the root's (embeddings, final norm, soft prompt) alike."""
    one, two = sgd[kind]
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=RTOL)
    assert_close(one["end"], two["end"], ATOL)
    moved = max((one["end"][n] - one["start"][n]).abs().max().item() for n in one["end"])
    assert moved > 100 * ATOL      # the steps changed the weights: a wrong gradient would show
