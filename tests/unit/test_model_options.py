"""The base models' architecture constants are config keys (models.<name>.kv_heads, tied_embeddings):
their schema defaults are what llama_config built before they were keys, a set value reaches the
model and the memory planner, and the pretraining params carry only values off the defaults."""

import copy
from pathlib import Path

import yaml

from ftscale import config
from ftscale.plan import memory
from ftscale.train.model import count_parameters, new_model
from tests.tiny_base import SIZE

TOY = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())


def test_the_defaults_are_multi_query_attention_and_tied_embeddings():
    assert config.model_option_defaults() == {"kv_heads": 1, "tied_embeddings": True}
    model = new_model(SIZE, 300, 64, seed=0)
    assert model.config.num_key_value_heads == 1 and model.config.tie_word_embeddings
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_set_options_reach_the_model_and_the_planner():
    size = SIZE | {"kv_heads": 2, "tied_embeddings": False}
    model = new_model(size, 300, 64, seed=0)
    assert model.config.num_key_value_heads == 2 and model.lm_head.weight is not model.model.embed_tokens.weight
    shape = memory.Shape(**size, vocab=300)
    assert count_parameters(model) == memory.parameters(shape) > memory.parameters(memory.Shape(**SIZE, vocab=300))


def test_pretraining_params_carry_only_changed_options():
    validated = copy.deepcopy(TOY)
    config.validate(validated)
    name = next(iter(TOY["models"]))
    assert validated["models"][name]["kv_heads"] == 1  # the schema filled it in
    assert config.model_size(validated, name) == TOY["models"][name]  # what the params held before: no job stale
    validated["models"][name]["kv_heads"] = 2
    assert config.model_size(validated, name) == TOY["models"][name] | {"kv_heads": 2}
