"""FSDP2 as the training loops use it (ftscale.train.distributed.shard; the models built by
pretrain.model_to_train and finetune.model_to_train), on 2 CPU ranks (gloo) against one process,
under plain SGD: an update proportional to the gradient, where Adafactor (the loops' optimizer,
tests/distributed/test_sharded.py) hides a gradient off by a constant factor. The ranks build the
model on the meta device and get rank 0's weights; batches of several micro-batches reduce their
gradients once, after the last.

Tolerances as test_sharded.py's (RTOL, ATOL; the figures measured are in its docstring)."""

import numpy as np
import pytest
import torch

from tests.distributed import each
from tests.distributed.test_sharded import ATOL, RTOL, finished, two_ranks
from tests.unit.test_resume import SIZE, base  # noqa: F401 - the fixture: a tiny base model and task

pytestmark = pytest.mark.distributed
STEPS = 3
KINDS = ["pretrain", "fmt", "lora", "prompt", "neox-fmt", "opt-lora"]
BF16_RTOL = 1e-3  # bf16 compute against fp32: the first loss (measured: at most 6e-5 relative)


def runs(base, hub, root, **extra):  # noqa: F811
    """Pretraining a new model (2 passes of 2 windows per rank), and finetuning the base model: FMT (2
    passes of 1 example per rank), LoRA (its parameters in the layers' units) and prompt tuning (its
    soft prompt in the root unit); and two Hub architectures (tests/hub/models.py): GPT-NeoX (other
    buffers' names) with FMT, OPT (learned positions, padded batches) with LoRA."""
    pretraining = dict(
        kind="pretrain",
        size=SIZE,
        vocab_size=300,
        seq_len=32,
        train_tokens=base / "stream" / "tokens.npy",
        batch_size=8,
        micro_batch_size=2,
        lr=1.0,
        seed=0,
        steps=STEPS,
        out=root / "pretrain.pt",
    )
    finetuning = [
        dict(
            kind=method,
            pet_size=pet,
            base_dir=directory,
            train_dir=base / "task" / "train",
            batch_size=4,
            micro_batch_size=micro,
            lr=1.0,
            seed=3,
            steps=STEPS,
            out=root / f"{name}.pt",
        )
        for name, directory, method, pet, micro in (
            ("fmt", base / "base", "fmt", None, 1),
            ("lora", base / "base", "lora", 2, None),
            ("prompt", base / "base", "prompt", 4, None),
            ("neox-fmt", hub / "neox", "fmt", None, 1),
            ("opt-lora", hub / "opt", "lora", 2, None),
        )
    ]
    return [run | extra for run in (pretraining, *finetuning)]


def hub_models(root):
    from ftscale.runtime import integrity
    from tests.hub import models
    from tests.hub.test_hub_models import opt

    for name, build in (("neox", lambda: models.neox(1)), ("opt", opt)):
        build().save_pretrained(root / name)
        integrity.seal(root / name)
    return root


@pytest.fixture(scope="module")
def sgd(base, tmp_path_factory):  # noqa: F811
    """Each run as one process, as 2 ranks, and as 2 ranks computing in bf16 (one launch):
    name -> (one process's, the ranks', the bf16 ranks' results)."""
    hub = hub_models(tmp_path_factory.mktemp("hub"))
    one, two, bf16 = (tmp_path_factory.mktemp(name) for name in ("one", "two", "bf16"))
    each.sgd_steps(runs(base, hub, one))
    finished(
        two_ranks(
            "tests.distributed.each:sgd_steps",
            {"runs": runs(base, hub, two) + runs(base, hub, bf16, param_dtype="bfloat16", steps=1)},
        )
    )
    return {
        run["out"].stem: [torch.load(root / run["out"].name) for root in (one, two, bf16)]
        for run in runs(base, hub, one)
    }


def assert_close(one: dict, two: dict, atol: float):
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name].numpy(), one[name].numpy(), rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_two_ranks_take_the_sgd_steps_of_one_process(sgd, kind):
    """The ranks' gradients add up to the whole batch's in every FSDP unit: the decoder layers' and
    the root's (embeddings, final norm, soft prompt) alike; and with the gradient sync deferred to a
    batch's last micro-batch (pretraining, FMT)."""
    one, two, _ = sgd[kind]
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=RTOL)
    assert_close(one["end"], two["end"], ATOL)
    moved = max((one["end"][n] - one["start"][n]).abs().max().item() for n in one["end"])
    assert moved > 100 * ATOL  # the steps changed the weights: a wrong gradient would show


@pytest.mark.parametrize("kind", KINDS)
def test_the_ranks_start_from_the_weights_of_one_process(sgd, kind):
    """Built on the meta device, the sharded model gets exactly rank 0's weights and buffers (the
    rotary frequencies are buffers outside the state dict)."""
    one, two, _ = sgd[kind]
    assert one["start"].keys() == two["start"].keys() and one["buffers"].keys() == two["buffers"].keys()
    for part in ("start", "buffers"):
        for name, tensor in one[part].items():
            assert torch.equal(two[part][name], tensor), name


@pytest.mark.parametrize("kind", KINDS)
def test_sharded_bf16_computes_in_bf16_and_keeps_fp32_weights_and_gradients(sgd, kind):
    """MixedPrecisionPolicy (param_dtype bf16, reduce_dtype fp32), as on GPUs: the layers compute in
    bf16, the sharded weights and their gradients stay fp32, and the loss is one process's fp32 loss
    to bf16 rounding."""
    one, two, bf16 = sgd[kind]
    assert (one["computed"], two["computed"], bf16["computed"]) == (
        {"torch.float32"},
        {"torch.float32"},
        {"torch.bfloat16"},
    )
    assert bf16["gradients"] == {"torch.float32"} and {t.dtype for t in bf16["end"].values()} == {torch.float32}
    np.testing.assert_allclose(bf16["losses"][0], one["losses"][0], rtol=BF16_RTOL)
    assert bf16["losses"][0] != one["losses"][0]
