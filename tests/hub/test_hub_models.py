"""Any AutoModelForCausalLM, offline: the prompt format from its tokenizer, packed batches where the
architecture honours them and padded ones elsewhere (both equal to each example alone), LoRA on
every linear layer, and fetching a base model (a local directory; a Hub model not in the cache
while offline)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ftscale.data import tokens
from ftscale.plan import hub
from ftscale.train import fetch, finetune
from ftscale.train.model import honours_packing, load_model
from tests.hub import models

pytestmark = pytest.mark.hub


def test_prompt_format_from_the_tokenizer():
    llama = tokens.prompt_format(models.llama_tokenizer())
    newline = tuple(models.llama_tokenizer().encode("\n", add_special_tokens=False))
    assert llama == tokens.PromptFormat(bos=(1,), sep=newline, eos=2, pad=0)
    neox = tokens.prompt_format(models.neox_tokenizer())  # Pythia-like: one special token, no pad
    assert neox.bos == (0,) and neox.eos == 0 and neox.pad == 0 and neox.sep != (0,)


def test_a_tokenizer_without_eos_is_refused_in_one_line():
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=models.train_bpe(["<s>"]), bos_token="<s>")
    with pytest.raises(ValueError) as error:
        tokens.prompt_format(tokenizer)
    assert "no EOS token" in str(error.value) and "\n" not in str(error.value)


def test_encode_follows_the_format():
    fmt = tokens.PromptFormat(bos=(7,), sep=(8, 9), eos=5, pad=5)
    ids, prompt = finetune.encode(np.array([20, 21]), np.array([30]), fmt)
    assert ids.tolist() == [7, 20, 21, 8, 9, 30, 5] and prompt == 5


def opt():
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(3)
    return OPTForCausalLM(
        OPTConfig(
            vocab_size=models.VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            ffn_dim=64,
            num_attention_heads=4,
            word_embed_proj_dim=32,
            max_position_embeddings=256,
        )
    )


ARCHITECTURES = {"llama": lambda: models.llama(0), "neox": lambda: models.neox(1), "opt": opt}
PACKS = {"llama": True, "neox": True, "opt": False}  # OPT derives positions from the mask: padded


def model_for(architecture, method, size):
    """A tiny model with non-trivial weights everywhere (LoRA's B starts at zero)."""
    model = finetune.attach_method(ARCHITECTURES[architecture](), method, size, seed=0)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    if method == "fmt":
        model.requires_grad_(True)
    return model


def examples(n=6):
    rng = np.random.default_rng(0)
    return [
        finetune.encode(
            rng.integers(3, models.VOCAB, rng.integers(2, 9)),
            rng.integers(3, models.VOCAB, rng.integers(1, 6)),
            tokens.prompt_format(models.neox_tokenizer()),
        )
        for _ in range(n)
    ]


def alone_nll(model, ids, prompt):
    """One example alone, unpadded, through the model's own forward (peft adds the soft prompt)."""
    input_ids = torch.from_numpy(ids)[None]
    logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[0, -len(ids) :]
    return F.cross_entropy(logits[prompt - 1 : -1].float(), input_ids[0, prompt:], reduction="sum")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_packing_probe(architecture):
    assert honours_packing(ARCHITECTURES[architecture]()) is PACKS[architecture]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("method, size", [("fmt", None), ("prompt", 3), ("lora", 2)])
def test_batches_equal_each_example_alone(architecture, method, size):
    """make_batch packs (Llama, GPT-NeoX) or pads (OPT); padded and packed batches give each
    example's loss and gradients as if it were alone."""
    model = model_for(architecture, method, size)
    model.eval()  # no dropout: exact comparison
    sequences = examples()
    batch = finetune.make_batch(model, sequences)
    assert ("position_ids" in batch) is PACKS[architecture]
    expected = sum(alone_nll(model, ids, prompt) for ids, prompt in sequences)
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    for batching in [finetune.pad(sequences), batch]:
        nll, count = finetune.target_nll(model, batching)
        assert count == sum(len(ids) - prompt for ids, prompt in sequences)
        torch.testing.assert_close(nll, expected, rtol=1e-4, atol=1e-4)
        nll.backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                torch.testing.assert_close(p.grad, expected_grads[name], rtol=1e-3, atol=1e-5)
        model.zero_grad(set_to_none=True)


def test_lora_adapts_every_linear_layer_of_gpt_neox():
    model = finetune.attach_method(models.neox(1), "lora", 2, seed=0)
    adapted = {name.split(".")[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}


def test_fetch_a_local_directory(tmp_path):
    directory = models.save(models.neox(1), models.neox_tokenizer(), tmp_path / "neox")
    out = tmp_path / "results" / "pretrain" / "fam" / "neox-100tok"
    record = fetch.fetch(family="fam", model="neox", tokens=100, out_dir=out, directory=directory)
    assert record["sha256"] == fetch.directory_sha256(tmp_path / "neox")
    summary = json.loads((out / "pretrain.json").read_text())
    loaded = load_model(out)
    assert summary["params"] == sum(p.numel() for p in loaded.parameters()) and summary["status"] == "hub"
    original = models.neox(1)
    for (name, a), (_, b) in zip(original.named_parameters(), loaded.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)
    (tmp_path / "neox" / "extra.txt").write_text("changed")
    assert fetch.directory_sha256(tmp_path / "neox") != record["sha256"]
    assert json.loads((out / hub.POINTER).read_text())["path"] == str((tmp_path / "neox").resolve())


def test_offline_and_not_cached_stops_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(fetch.FetchError) as error:
        fetch.download("EleutherAI/pythia-70m", "step143000", cache_dir=str(tmp_path / "cache"))
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        "EleutherAI/pythia-70m@step143000 is not in the Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE" in message and "hf download EleutherAI/pythia-70m --revision step143000" in message
