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


def test_a_bf16_evaluations_plan_counts_half_the_weights_and_no_autocast_copies():
    """configs/paper.yaml's largest evaluation (16B, prompt tuning, summarization): bf16 weights
    halve the weights' 59.8 GB and leave autocast nothing to copy; the micro-batch doubles to the
    whole evaluation batch (counted, not measured: bench_memory measures fp32 weights)."""
    import copy
    from pathlib import Path

    from ftscale import config
    from ftscale.plan import grid, sizing

    paper = config.load(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
    c = grid.expand_conditions(paper)["summarization/16B-283000000000tok/prompt-100/df8000"]
    fp32 = sizing.evaluate_job(paper, c)
    bf16_config = copy.deepcopy(paper)
    bf16_config["evaluate"]["weights_dtype"] = "bfloat16"
    bf16 = sizing.evaluate_job(bf16_config, c)
    assert bf16.memory.weights == pytest.approx(fp32.memory.weights / 2) and fp32.memory.autocast_copies > 0
    assert bf16.memory.autocast_copies == 0
    assert (fp32.micro_batch_size, bf16.micro_batch_size) == (32, 64)
    assert bf16.peak_gpu_memory_gb < fp32.peak_gpu_memory_gb <= 0.9 * 80
