"""bf16 checkpoints and evaluation weights (finetune.checkpoint_dtype, evaluate.weights_dtype; issue
25): a finetuned checkpoint saved in bf16 is bf16 on disk, transformers and peft load it as it is,
evaluation in bf16 holds every weight (adapters included) in bf16 with the saved values; float32 by
default."""

import pytest
import torch
from safetensors import safe_open

from ftscale.train import finetune
from ftscale.train.model import load_model, new_model, save_checkpoint
from tests.unit.test_fast_path import METHODS, SIZE


def saved_dtypes(directory) -> set[str]:
    dtypes = set()
    for file in directory.glob("*.safetensors"):
        with safe_open(str(file), "pt") as tensors:
            dtypes |= {tensors.get_slice(name).get_dtype() for name in tensors.keys()}
    return dtypes


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    directory = tmp_path_factory.mktemp("base")
    save_checkpoint(new_model(SIZE, 300, 64, seed=0), directory)
    return directory


@pytest.mark.parametrize("method, size", METHODS)
def test_a_bf16_checkpoint_is_bf16_on_disk_and_when_loaded(base, tmp_path, method, size):
    model = finetune.attach_method(load_model(base), method, size, seed=0)
    with torch.no_grad():  # trained weights that bf16 does not hold exactly
        for p in model.parameters():
            if p.requires_grad or method == "fmt":
                p.add_(torch.randn_like(p) * 0.1)
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad or method == "fmt"}
    save_checkpoint(model, tmp_path / "fp32")
    assert saved_dtypes(tmp_path / "fp32") == {"F32"}  # the default
    save_checkpoint(model, tmp_path / "bf16", "bfloat16")
    assert saved_dtypes(tmp_path / "bf16") == {"BF16"}
    evaluated = finetune.load_finetuned(base, tmp_path / "bf16", method, "bfloat16")
    assert {p.dtype for p in evaluated.parameters()} == {torch.bfloat16}
    weights = dict(evaluated.named_parameters())
    for name, value in trained.items():
        assert torch.equal(weights[name], value.to(torch.bfloat16)), name
    # evaluation's default: float32 weights, the saved bf16 values widened
    widened = dict(finetune.load_finetuned(base, tmp_path / "bf16", method).named_parameters())
    assert {p.dtype for p in widened.values()} == {torch.float32}
    assert all(torch.equal(widened[n], v.to(torch.bfloat16).float()) for n, v in trained.items())
