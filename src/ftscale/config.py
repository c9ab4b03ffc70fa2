"""Config validation: the JSON schema for shape, then the cross-references a schema cannot see.

Every problem is reported as one line naming the key and the value at fault (ConfigError).
"""
from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config problem; str() is one line: `key.path: what is wrong`."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: dict, schema_path: Path = SCHEMA) -> dict:
    """Check `config` against the schema and the grid's cross-references; return it unchanged."""
    import jsonschema

    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        message = error.message
        if error.validator == "additionalProperties":
            message = f"unknown key ({message})"
        raise ConfigError(f"{_key_path(error.absolute_path)}: {message}")
    _check_references(config)
    return config


def _check_references(config: dict) -> None:
    def fail(key: str, message: str):
        raise ConfigError(f"{key}: {message}")

    models, families = config["models"], config["families"]
    pretrain, methods = config["pretrain"], config["finetune"]["methods"]
    if pretrain["base_model"] not in models:
        fail("pretrain.base_model", f"{pretrain['base_model']!r} is not one of models {list(models)}")
    if pretrain["lr_min"] > pretrain["lr_max"]:
        fail("pretrain.lr_min", f"{pretrain['lr_min']} is larger than lr_max {pretrain['lr_max']}")
    for family in pretrain["budgets"]:
        if family not in families:
            fail(f"pretrain.budgets.{family}", f"unknown family (families: {list(families)})")
    for name, method in methods.items():
        if name != "fmt" and method["default_size"] not in method["sizes"]:
            fail(f"finetune.methods.{name}.default_size",
                 f"{method['default_size']} is not one of sizes {method['sizes']}")
    for name, task in config["tasks"].items():
        key = f"tasks.{name}"
        family = task["family"]
        if family not in families:
            fail(f"{key}.family", f"{family!r} is not one of families {list(families)}")
        if family not in pretrain["budgets"]:
            fail(f"pretrain.budgets", f"no budgets for family {family!r} used by task {name!r}")
        if task["type"] == "translation":
            for lang_key in ("source_lang", "target_lang"):
                if lang_key not in task:
                    fail(f"{key}.{lang_key}", "required for a translation task")
        elif "languages" not in task:
            fail(f"{key}.languages", "required for a summarization task")
        for method, sizes in task["finetune_examples"].items():
            if method not in methods:
                fail(f"{key}.finetune_examples.{method}", f"method not configured in finetune.methods")
            too_big = [s for s in sizes if s > task["train_examples"]]
            if too_big:
                fail(f"{key}.finetune_examples.{method}",
                     f"{too_big} exceed train_examples {task['train_examples']}")
        for method in methods:
            if method not in task["finetune_examples"]:
                fail(f"{key}.finetune_examples", f"no finetuning-data sizes for method {method!r}")

    heldout = config["analysis"].get("heldout", {})
    grid_values = {
        "model": set(models),
        "pretrain": {b for budgets in pretrain["budgets"].values() for b in budgets},
        "pet": {s for m in methods.values() for s in m.get("sizes", [])},
        "finetune_examples": {s for t in config["tasks"].values()
                              for sizes in t["finetune_examples"].values() for s in sizes},
    }
    for axis, values in heldout.items():
        for value in values:
            if value not in grid_values[axis]:
                fail(f"analysis.heldout.{axis}", f"{value!r} is not in the grid ({sorted(grid_values[axis])})")


def load(path: str | Path) -> dict:
    """Read and validate a config file (used by tests and tools; the Snakefile validates its own)."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error.problem} at line {error.problem_mark.line + 1})")
    return validate(config)
