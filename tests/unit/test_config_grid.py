"""Config validation errors and grid expansion."""

import copy
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from ftscale import config
from ftscale.plan import grid

ROOT = Path(__file__).resolve().parents[2]


def test_default_and_tiny_configs_validate(toy_config, tiny_config):
    """Both configs pass, already in canonical form (validating again changes nothing), with a grid."""
    for study in (toy_config, tiny_config):
        config.validate(study)
        again = copy.deepcopy(study)
        config.validate(again)
        assert again == study and grid.expand_conditions(study)
    tiny_config["analysis"]["heldout"]["finetune_examples"] = "largest"  # the rule, or Df values
    config.validate(tiny_config)


@pytest.mark.parametrize(
    "mutate, key, fragment",
    [
        (lambda c: c.update(colour="red"), "colour", "unknown key"),
        (lambda c: c["models"]["m1"].update(layers=-2), "models.m1.layers", "-2"),
        (lambda c: c["models"]["m1"].update(layers="two"), "models.m1.layers", "'two'"),
        (
            lambda c: c["finetune"]["methods"].update(adapters={"learning_rate": 1.0}),
            "finetune.methods.adapters",
            "valid keys: fmt, lora, prompt",
        ),
        (lambda c: c["analysis"]["heldout"].update(model=["m9"]), "analysis.heldout.model", "'m9'"),
        (lambda c: c["analysis"]["heldout"].update(finetune_examples=[48]), "analysis.heldout.finetune_examples", "48"),
        (
            lambda c: c["analysis"]["heldout"].update(finetune_examples="smallest"),
            "analysis.heldout.finetune_examples",
            "'smallest'",
        ),
        (lambda c: c["pretrain"].update(base_model="m9"), "pretrain.base_model", "'m9'"),
        (lambda c: c["tasks"]["translation_ende"].update(family="klingon"), "tasks.translation_ende.family", "klingon"),
        (lambda c: c["finetune"]["methods"]["lora"].update(default_size=3), "finetune.methods.lora.default_size", "3"),
        (
            lambda c: c["tasks"]["translation_ende"]["finetune_examples"].update(fmt=[10**6]),
            "tasks.translation_ende.finetune_examples.fmt",
            "exceed",
        ),
        (
            lambda c: c["tasks"]["summarization"].update(zero_shot_sources=["fr"]),
            "tasks.summarization.zero_shot_sources",
            "only a translation task",
        ),
        (
            lambda c: c["tasks"]["translation_ende"].update(zero_shot_sources=["de"]),
            "tasks.translation_ende.zero_shot_sources",
            "'de'",
        ),
        (
            lambda c: c["evaluate"]["transfer"].update(few_shot_shots=[1, 10**6]),
            "evaluate.transfer.few_shot_shots",
            "dev_examples",
        ),
        (
            lambda c: c["evaluate"]["transfer"].update(summarization_shots=[17]),  # tiny: 16 dev articles
            "evaluate.transfer.summarization_shots",
            "tasks.summarization.dev_examples 16",
        ),
        (
            lambda c: c["tasks"]["translation_ende"].update(zero_shot_sources=["xx"]),
            "tasks.translation_ende.zero_shot_sources",
            "no language 'xx'",
        ),
        (lambda c: c["families"]["ende"].update(languages=["en", "xx"]), "families.ende.languages", "'xx'"),
        (lambda c: c["data"].update(source="local"), "data.local", "required"),
        (lambda c: c["data"].update(source="hf", hf={"tasks": {}}), "data.hf.pretrain", "no corpus"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tiny_config, mutate, key, fragment):
    mutate(tiny_config)
    with pytest.raises(config.ConfigError) as error:
        config.validate(tiny_config)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(key + ":"), message
    assert fragment in message


def test_grid_counts_and_shared_conditions(toy_config):
    config.validate(toy_config)  # the grid reads a validated config: defaults filled in
    conditions = grid.expand_conditions(toy_config)
    counts = grid.axis_counts(conditions)
    models, dfs = len(toy_config["models"]), len(toy_config["tasks"]["translation_ende"]["finetune_examples"]["fmt"])
    budgets = len(toy_config["pretrain"]["budgets"]["ende"])
    assert counts[("translation_ende", "fmt", "model")] == models * dfs
    assert counts[("translation_ende", "fmt", "pretrain")] == budgets * dfs
    assert counts[("translation_ende", "lora", "pet")] == 3 * dfs
    assert ("translation_ende", "fmt", "pet") not in counts  # FMT has no PET axis
    assert ("translation_enzh", "fmt", "pretrain") not in counts  # axes: [model]
    # The base model on the full corpus at the default PET size is one condition on three axes.
    shared = [
        c
        for c in conditions.values()
        if c.task == "translation_ende" and c.method == "lora" and c.axes == {"model", "pretrain", "pet"}
    ]
    assert len(shared) == dfs
    per_task_lora = sum(1 for c in conditions.values() if c.task == "translation_ende" and c.method == "lora")
    assert per_task_lora == (models + budgets + 3 - 2) * dfs


def test_pretrain_runs_deduplicated(toy_config):
    config.validate(toy_config)
    runs = grid.pretrain_runs(toy_config, grid.expand_conditions(toy_config))
    # ende: 4 sizes on the full corpus + 2 smaller budgets of the base; enzh: 4 sizes.
    assert len(runs) == 4 + 2 + 4
    assert len(set(runs.values())) == len(runs)


def test_condition_ids_name_every_field(toy_config):
    """A condition's id (its runs' path) reads back into every field that makes it distinct, so two
    conditions never share one. (Counting the distinct ids of expand_conditions' dict, keyed by id,
    could not fail: a collision would silently drop a condition.)"""
    config.validate(toy_config)
    for c in grid.expand_conditions(toy_config).values():
        task, model_tokens, method_id, df = c.id.split("/")
        model, tokens = model_tokens.rsplit("-", 1)
        method, _, pet = method_id.partition("-")
        assert (task, model, tokens, method, pet, df) == (
            c.task,
            c.model,
            f"{c.pretrain_tokens}tok",
            c.method,
            "" if c.pet_size is None else str(c.pet_size),
            f"df{c.finetune_examples}",
        )


@pytest.mark.parametrize("config_file", ["config.yaml", "configs/paper.yaml", "tests/configs/tiny.yaml"])
def test_condition_pattern_matches_every_id_and_no_other(config_file):
    """grid.CONDITION_PATTERN (the rules' `condition` wildcard) is built from Condition.id's template:
    each id matches it whole; an id with a part the template does not allow does not."""
    study = yaml.safe_load((ROOT / config_file).read_text())
    config.validate(study)
    conditions = grid.expand_conditions(study)
    assert conditions and all(re.fullmatch(grid.CONDITION_PATTERN, cid) for cid in conditions)
    some = next(c for c in conditions.values() if c.pet_size is not None)
    wrong = [
        replace(some, method="adapter"),
        replace(some, finetune_examples="many"),
        replace(some, pet_size=None, method="lora"),
        replace(some, model="m1/x"),
    ]
    assert not any(re.fullmatch(grid.CONDITION_PATTERN, c.id) for c in wrong)
