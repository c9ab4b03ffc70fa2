"""Config validation: the JSON schema for shape, then the cross-references a schema cannot see.

Every problem is reported as one line naming the key and the value at fault (ConfigError).
A valid config comes back in canonical form (ftscale.canonical), so that the workflow's staleness
follows what the config means, not how it is written.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from ftscale.canonical import canonicalize

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config problem; str() is one line: `key.path: what is wrong`."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: dict, schema_path: Path = SCHEMA) -> dict:
    """Check `config` against the schema and the grid's cross-references; return it in canonical
    form. In place: numbers written as text are read, keys sorted (the Snakefile's `config` is one
    object shared with every rule and job script)."""
    import jsonschema

    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    _read_numbers_written_as_text(config, validator.iter_errors(config))
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        message = error.message
        if error.validator == "additionalProperties":
            message = f"unknown key ({message})"
        raise ConfigError(f"{_key_path(error.absolute_path)}: {message}")
    _check_references(config)
    return canonicalize(config)


# PyYAML reads YAML 1.1, where 1e-3 (no dot) and 1.0e3 (no exponent sign) are strings; JSON and
# YAML 1.2 read both as numbers, and so do people. Where the schema wants a number, such a string
# is read as the number it spells; anywhere else it stays text.
NUMBER_TEXT = re.compile(r"[-+]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?")


def _read_numbers_written_as_text(config: dict, errors) -> None:
    for error in list(errors):
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        path = list(error.absolute_path)
        if (error.validator == "type" and {"number", "integer"} & set(wanted) and path
                and isinstance(error.instance, str) and NUMBER_TEXT.fullmatch(error.instance.strip())):
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = float(error.instance.strip().replace("_", ""))


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

    _check_transfer(config, fail)
    _check_data_source(config, fail)

    heldout = config["analysis"].get("heldout", {})
    grid_values = {
        "model": set(models),
        "pretrain": {b for budgets in pretrain["budgets"].values() for b in budgets},
        "pet": {s for m in methods.values() for s in m.get("sizes", [])},
        "finetune_examples": {s for t in config["tasks"].values()
                              for sizes in t["finetune_examples"].values() for s in sizes},
    }
    for axis, values in heldout.items():
        if axis == "finetune_examples" and values == "largest":
            continue                     # a rule (each task and method's largest Df), not values to check
        for value in values:
            if value not in grid_values[axis]:
                fail(f"analysis.heldout.{axis}", f"{value!r} is not in the grid ({sorted(grid_values[axis])})")


def _check_transfer(config: dict, fail) -> None:
    """Zero-shot sources only on translation tasks, other than the task's own two languages; and
    enough dev examples to draw the largest few-shot prompt's demonstrations from."""
    shots = config["evaluate"].get("transfer", {}).get("few_shot_shots", [])
    for name, task in config["tasks"].items():
        sources = task.get("zero_shot_sources", [])
        if sources and task["type"] != "translation":
            fail(f"tasks.{name}.zero_shot_sources", "only a translation task has zero-shot directions")
        own = [lang for lang in sources if lang in (task.get("source_lang"), task.get("target_lang"))]
        if own:
            fail(f"tasks.{name}.zero_shot_sources", f"{own[0]!r} is the task's own source or target language")
        if task["type"] == "translation" and shots and max(shots) > task["dev_examples"]:
            fail("evaluate.transfer.few_shot_shots",
                 f"{max(shots)} demonstrations exceed tasks.{name}.dev_examples {task['dev_examples']}")


def _check_data_source(config: dict, fail) -> None:
    """An hf or local source names a dataset (or files) for every split the grid reads; the
    synthetic source generates only the languages it has grammars for."""
    data = config["data"]
    source = data["source"]
    if source == "synthetic":
        from ftscale.data.synthetic import LANGUAGES
        for name, family in config["families"].items():
            for lang in family["languages"]:
                if lang not in LANGUAGES:
                    fail(f"families.{name}.languages", f"the synthetic source has no language {lang!r} ({list(LANGUAGES)})")
        for name, task in config["tasks"].items():
            for key in ("source_lang", "target_lang", "languages", "zero_shot_sources"):
                for lang in [task[key]] if isinstance(task.get(key), str) else task.get(key, []):
                    if lang not in LANGUAGES:
                        fail(f"tasks.{name}.{key}", f"the synthetic source has no language {lang!r} ({list(LANGUAGES)})")
        return
    if source not in data:
        fail(f"data.{source}", f"required when data.source is {source!r} (the datasets or files to read)")
    options = data[source]
    for family in config["pretrain"]["budgets"]:
        for lang in config["families"].get(family, {}).get("languages", []):
            if lang not in options.get("pretrain", {}):
                fail(f"data.{source}.pretrain", f"no corpus for language {lang!r} of family {family!r}")
    for name, task in config["tasks"].items():
        if name not in options.get("tasks", {}):
            fail(f"data.{source}.tasks", f"no train/dev/test data for task {name!r}")
        for lang in task.get("zero_shot_sources", []):
            if lang not in options.get("zero_shot", {}).get(name, {}):
                fail(f"data.{source}.zero_shot", f"no zero-shot set {lang!r} for task {name!r} (tasks.{name}.zero_shot_sources)")


def load(path: str | Path) -> dict:
    """Read and validate a config file (used by tests and tools; the Snakefile validates its own)."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error.problem} at line {error.problem_mark.line + 1})")
    return validate(config)
