"""The methods' scientific constants are config keys (finetune.methods.<method>): their schema
defaults are what attach_method did before they were keys, and a set value reaches peft."""

import copy

import pytest

from ftscale import config
from ftscale.config import method_option_defaults
from ftscale.train import finetune
from ftscale.train.model import new_model
from tests.workflow.test_tiny_study import TINY_CONFIG

SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}


def attached(method, size, **options):
    model = finetune.attach_method(new_model(SIZE, 300, 128, seed=0), method, size, seed=0, options=options or None)
    return model, model.active_peft_config


def test_the_defaults_are_the_former_constants():
    assert method_option_defaults("fmt") == {}
    assert method_option_defaults("prompt") == {"init": "sample_vocab"}
    assert method_option_defaults("lora") == {"alpha_over_rank": 1, "dropout": 0, "target_modules": "all-linear"}
    _, lora = attached("lora", 4)
    assert (lora.lora_alpha, lora.lora_dropout) == (4, 0)  # alpha = rank: scale 1
    _, prompt = attached("prompt", 4)
    assert prompt.prompt_tuning_init == "SAMPLE_VOCAB"


def test_lora_options_reach_peft():
    model, lora = attached("lora", 4, alpha_over_rank=4, dropout=0.25, target_modules=["q_proj", "v_proj"])
    assert (lora.lora_alpha, lora.lora_dropout, set(lora.target_modules)) == (16, 0.25, {"q_proj", "v_proj"})
    trained = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {"q_proj", "v_proj"}
    layer = next(m for n, m in model.named_modules() if n.endswith("q_proj"))
    assert layer.scaling["default"] == 4.0  # alpha / rank


def test_prompt_init_reaches_peft():
    sampled, _ = attached("prompt", 4)
    random, config = attached("prompt", 4, init="random")
    assert config.prompt_tuning_init == "RANDOM"
    embedding = sampled.base_model.get_input_embeddings().weight
    soft = {name: m.prompt_encoder["default"].embedding.weight for name, m in (("s", sampled), ("r", random))}
    # sampled: every row is a row of the vocabulary's embeddings; random: none is
    assert all((row == embedding).all(dim=1).any() for row in soft["s"])
    assert not any((row == embedding).all(dim=1).any() for row in soft["r"])


@pytest.mark.parametrize("bad", [{"init": "text"}, {"dropout": 1}, {"alpha_over_rank": 0}, {"target_modules": []}])
def test_a_bad_option_is_one_line_naming_the_key(bad):
    edited = copy.deepcopy(TINY_CONFIG)
    method = "prompt" if "init" in bad else "lora"
    edited["finetune"]["methods"][method] |= bad
    with pytest.raises(config.ConfigError, match=rf"^finetune\.methods\.{method}\.{next(iter(bad))}"):
        config.validate(edited)
