"""Defaults live in the schema, once: a config without an optional key gets the schema's default
(today's value, stated here so that a changed default is a visible decision), the same default
snakemake.utils.validate(set_default=True) fills in; a value of the wrong type is one line naming
its key."""

import copy

import pytest
import yaml
from snakemake.utils import validate as snakemake_validate

from ftscale import config
from ftscale.analysis import procedure
from ftscale.runtime.canonical import canonical

TASK = "translation_ende"
# (key path, today's default): each was restated in code (procedure.py, grid.py, plan.py, cli.py)
DEFAULTS = [
    (("pretrain", "data_axis"), "checkpoints"),
    (("tasks", TASK, "axes"), ["model", "pretrain", "pet"]),
    (("tasks", TASK, "zero_shot_sources"), []),
    (("tasks", TASK, "max_steps"), {}),
    (
        ("evaluate", "transfer"),
        {"axes": [], "zero_shot_examples": 0, "few_shot_shots": [], "summarization_shots": [], "few_shot_examples": 0},
    ),
    (
        ("cluster",),
        {
            "gpus": 0,
            "gpu_model": None,
            "gpu_memory_gb": 80,
            "gpus_per_node": 8,
            "data_cpus": 16,
            "max_gpus_per_job": 8,
            "node_memory_gb": 256,
            "flops_per_second": 2 * 10**10,
            "calibration": None,
            "safety_factor": 3,
            "min_runtime_minutes": 10,
            "max_runtime_minutes": 2880,
            "mem_mb": {},
            "runtime_minutes": {},
        },
    ),
    (("analysis", "objective"), "huber"),
    (("analysis", "huber_delta"), 1e-3),
    (("analysis", "heldout"), {"model": [], "pretrain": [], "pet": [], "pretraining": [], "finetune_examples": []}),
    (("analysis", "bootstrap"), 100),
    (("analysis", "seed"), 0),
    (("analysis", "which_method"), []),
    # hyperparameters that were constants in the training loops, now keys
    (("finetune", "lr_min_divisor"), 10),
    (("finetune", "warmup_steps"), 0),
    (("finetune", "dev_batch_size"), 64),
    # speed and memory options (issue 25): off by default, so the toy's results stay bitwise
    (("finetune", "attention"), "sdpa"),
    (("finetune", "micro_batch_unit"), "examples"),
    (("finetune", "checkpoint_dtype"), "float32"),
    (("evaluate", "weights_dtype"), "float32"),
    (("pretrain", "val_windows"), 64),
    (("pretrain", "log_every"), 50),
    (("pretrain", "save_every"), 200),
]
# the training loops' arguments that config keys hold: required, so no default restates the schema's
LOOP_ARGUMENTS = {
    "finetune": ("lr_min_divisor", "warmup_steps", "dev_batch_size"),
    "pretrain": ("val_windows", "log_every", "checkpoint_every"),
}
WRONG_TYPE = {str: 7, list: "model", dict: [1], int: "many", float: "small", type(None): 5}


def parent_of(cfg: dict, path: tuple) -> dict:
    for key in path[:-1]:
        cfg = cfg[key]
    return cfg


def schema_node(path: tuple) -> dict:
    node = yaml.safe_load(config.SCHEMA.read_text())
    for key in path:
        node = node["properties"][key] if key in node.get("properties", {}) else node["additionalProperties"]
    return node


def filled_default(path: tuple):
    """The key's own schema default, with the defaults of its properties filled in (an object's
    default is often {}, its keys' defaults below it)."""
    default = copy.deepcopy(schema_node(path)["default"])
    node = {"$defs": yaml.safe_load(config.SCHEMA.read_text())["$defs"], **schema_node(path)}
    assert not list(config._defaulting_validator(node).iter_errors(default))
    return default


@pytest.mark.parametrize("path, today", DEFAULTS, ids=[".".join(p) for p, _ in DEFAULTS])
def test_a_missing_key_gets_the_schemas_default(tiny_config, path, today):
    parent_of(tiny_config, path).pop(path[-1], None)
    validated = config.validate(tiny_config)
    assert parent_of(validated, path)[path[-1]] == today
    assert canonical(filled_default(path)) == canonical(today)


@pytest.mark.parametrize("path, today", DEFAULTS, ids=[".".join(p) for p, _ in DEFAULTS])
def test_a_wrong_type_is_one_line_naming_the_key(tiny_config, path, today):
    parent_of(tiny_config, path)[path[-1]] = WRONG_TYPE[type(today)]
    with pytest.raises(config.ConfigError) as error:
        config.validate(tiny_config)
    message = str(error.value)
    assert "\n" not in message and message.startswith(".".join(path)), message


def test_the_defaults_are_the_ones_snakemake_fills_in(tiny_config):
    for path, _ in DEFAULTS:
        parent_of(tiny_config, path).pop(path[-1], None)
    theirs = copy.deepcopy(tiny_config)
    snakemake_validate(theirs, str(config.SCHEMA), set_default=True)
    assert config.validate(tiny_config) == canonical(theirs)


def test_analysis_options_without_a_config_take_the_same_defaults():
    options = procedure.resolve_options({"bootstrap": 5})
    assert options["bootstrap"] == 5 and options["objective"] == config.schema_default("analysis", "objective")
    assert options["heldout"] == config.schema_default("analysis", "heldout") | {
        "model": [],
        "pretrain": [],
        "pet": [],
        "pretraining": [],
        "finetune_examples": [],
    }
    with pytest.raises(ValueError, match=r"^analysis\.bootstrap: -1 is less than the minimum of 0$"):
        procedure.resolve_options({"bootstrap": -1})


def test_ftscale_fit_takes_the_analysis_defaults():
    from ftscale import cli

    parser = cli._Parser()
    cli.add_fit_arguments(parser)
    args = parser.parse_args(["t.csv", "--law", "power", "--x", "df", "--loss", "loss"])
    assert (
        (args.objective, args.delta)
        == (config.schema_default("analysis", "objective"), config.schema_default("analysis", "huber_delta"))
        == ("huber", 1e-3)
    )


@pytest.mark.parametrize("function", LOOP_ARGUMENTS)
def test_the_training_loops_take_their_config_keys_without_defaults(function):
    import importlib
    import inspect

    parameters = inspect.signature(getattr(importlib.import_module(f"ftscale.train.{function}"), function)).parameters
    assert [name for name in LOOP_ARGUMENTS[function] if parameters[name].default is not inspect.Parameter.empty] == []
