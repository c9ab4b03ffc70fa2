"""Config validation: the JSON schema for shape, then the cross-references a schema cannot see.

Every problem is reported as one line naming the key and the value at fault (ConfigError).
Defaults live in the schema (`default:`), once: validation fills every missing key that has one,
as snakemake.utils.validate(config, schema, set_default=True) does, so the code reads each key
without restating its default. A valid config comes back in canonical form (ftscale.runtime.canonical),
so that the workflow's staleness follows what the config means, not how it is written.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from importlib import resources
from pathlib import Path

import yaml

from ftscale.plan import grid, hub
from ftscale.runtime.canonical import canonicalize

# Package data (pyproject.toml: tool.setuptools.package-data), so an installed ftscale finds it.
SCHEMA = resources.files("ftscale") / "config.schema.yaml"


class ConfigError(ValueError):
    """A config problem; str() is one line: `key.path: what is wrong`."""


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


@functools.cache
def _schema(schema_path: Path = SCHEMA) -> dict:
    return yaml.safe_load(schema_path.read_text())  # read-only: defaults are copied out of it


def validate(config: dict, schema_path: Path = SCHEMA) -> dict:
    """Check `config` against the schema and the grid's cross-references; return it in canonical
    form. In place: numbers written as text are read, the schema's defaults filled in, keys sorted
    (the Snakefile's `config` is one object shared with every rule and job script)."""
    import jsonschema

    schema = _schema(schema_path)
    _read_numbers_written_as_text(config, jsonschema.Draft202012Validator(schema).iter_errors(config))
    _check_with_defaults(config, schema)
    _check_references(config)
    return canonicalize(config)


def section_with_defaults(section: str, value: dict, schema_path: Path = SCHEMA) -> dict:
    """One top-level section of a config (e.g. `analysis`) checked, with its defaults filled in
    place; for code that takes a section's options without a whole config."""
    schema = _schema(schema_path)
    _check_with_defaults(value, {"$defs": schema["$defs"], **schema["properties"][section]}, prefix=(section,))
    return value


def schema_default(*keys: str, schema_path: Path = SCHEMA):
    """The schema's default of a config key, e.g. schema_default("analysis", "huber_delta")."""
    node = _schema(schema_path)
    for key in keys:
        node = node["properties"][key]
    return copy.deepcopy(node["default"])


def method_option_defaults(method: str, schema_path: Path = SCHEMA) -> dict:
    """A finetuning method's options with their schema defaults (the keys of finetune.methods.<method>
    that have one: LoRA's alpha_over_rank, dropout, target_modules; prompt tuning's init); {} for FMT."""
    methods = _schema(schema_path)["properties"]["finetune"]["properties"]["methods"]["properties"]
    return {
        key: copy.deepcopy(spec["default"]) for key, spec in methods[method]["properties"].items() if "default" in spec
    }


def model_option_defaults(schema_path: Path = SCHEMA) -> dict:
    """The options of a models.<name> entry that have a schema default (kv_heads, tied_embeddings)."""
    spec = _schema(schema_path)["properties"]["models"]["additionalProperties"]["properties"]
    return {key: copy.deepcopy(option["default"]) for key, option in spec.items() if "default" in option}


def model_size(config: dict, name: str) -> dict:
    """A validated config's models.<name> entry without the options at their schema defaults (the
    training script fills those in): the pretraining jobs' params, so a study built before kv_heads
    and tied_embeddings were keys stays up to date, and setting one reruns that model's jobs."""
    defaults = model_option_defaults()
    return {
        key: value for key, value in config["models"][name].items() if key not in defaults or defaults[key] != value
    }


# analysis keys added after studies had run: at their schema defaults they stay out of the fit and
# figures rules' params, so a finished study's analysis stays up to date; a changed one reruns it
LATER_ANALYSIS_KEYS = ("which_model",)


def analysis_params(analysis: dict, schema_path: Path = SCHEMA) -> dict:
    """The fit and figures rules' params: a config's `analysis` section (defaults filled in) less
    the LATER_ANALYSIS_KEYS that are at their schema defaults (the jobs fill those in)."""
    defaults = section_with_defaults("analysis", {}, schema_path)
    return {k: v for k, v in analysis.items() if k not in LATER_ANALYSIS_KEYS or v != defaults[k]}


def _defaulting_validator(schema: dict):
    """A Draft 2020-12 validator that first fills each missing property that has a `default` (a
    copy), then validates it: jsonschema's FAQ recipe, the one snakemake.utils.validate uses with
    set_default=True. Defaults inside a default object are filled too (it is validated next)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for key, property_schema in properties.items():
                if "default" in property_schema and key not in instance:
                    instance[key] = copy.deepcopy(property_schema["default"])
        yield from check_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": fill_then_check})(schema)


def _check_with_defaults(instance: dict, schema: dict, prefix: tuple = ()) -> None:
    """Fill the defaults, then raise the most relevant schema error as one ConfigError line."""
    import jsonschema

    errors = sorted(
        _defaulting_validator(schema).iter_errors(instance), key=lambda e: (len(e.path), list(map(str, e.path)))
    )
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        path, message = [*prefix, *error.absolute_path], error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            path, message = _unknown_key(error, path)
        raise ConfigError(f"{_key_path(path)}: {message}")


def _unknown_key(error, path: list) -> tuple[list, str]:
    """An extra key, named in full, with the nearest valid one (`seed` -> `seeds`) or the valid ones."""
    valid = list(error.schema.get("properties", {}))
    unknown = [k for k in error.instance if k not in valid]
    if not unknown or not valid:
        return path, f"unknown key ({error.message})"
    near = difflib.get_close_matches(str(unknown[0]), valid, n=1, cutoff=0.75)
    hint = f"did you mean {near[0]!r}?" if near else f"valid keys: {', '.join(sorted(valid))}"
    return [*path, unknown[0]], f"unknown key ({hint})"


# PyYAML reads YAML 1.1, where 1e-3 (no dot) and 1.0e3 (no exponent sign) are strings; JSON and
# YAML 1.2 read both as numbers, and so do people. Where the schema wants a number, such a string
# is read as the number it spells; anywhere else it stays text.
NUMBER_TEXT = re.compile(r"[-+]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?")


def _read_numbers_written_as_text(config: dict, errors) -> None:
    for error in list(errors):
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        path = list(error.absolute_path)
        if (
            error.validator == "type"
            and {"number", "integer"} & set(wanted)
            and path
            and isinstance(error.instance, str)
            and NUMBER_TEXT.fullmatch(error.instance.strip())
        ):
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = float(error.instance.strip().replace("_", ""))


def _check_references(config: dict) -> None:
    def fail(key: str, message: str):
        raise ConfigError(f"{key}: {message}")

    families, methods = config["families"], config["finetune"]["methods"]
    models, pretrain = _check_pretraining(config, fail)
    hub.check(config, fail)
    for name, method in methods.items():
        if name != "fmt" and method["default_size"] not in method["sizes"]:
            fail(
                f"finetune.methods.{name}.default_size",
                f"{method['default_size']} is not one of sizes {method['sizes']}",
            )
    for name, task in config["tasks"].items():
        key = f"tasks.{name}"
        family = task["family"]
        if family not in families:
            fail(f"{key}.family", f"{family!r} is not one of families {list(families)}")
        if not hub.is_hub_family(config, family) and family not in pretrain["budgets"]:
            fail("pretrain.budgets", f"no budgets for family {family!r} used by task {name!r}")
        if task["type"] == "translation":
            for lang_key in ("source_lang", "target_lang"):
                if lang_key not in task:
                    fail(f"{key}.{lang_key}", "required for a translation task")
        elif "languages" not in task:
            fail(f"{key}.languages", "required for a summarization task")
        for method, sizes in task["finetune_examples"].items():
            if method not in methods:
                fail(f"{key}.finetune_examples.{method}", "method not configured in finetune.methods")
            too_big = [s for s in sizes if s > task["train_examples"]]
            if too_big:
                fail(f"{key}.finetune_examples.{method}", f"{too_big} exceed train_examples {task['train_examples']}")
        for method in methods:
            if method not in task["finetune_examples"]:
                fail(f"{key}.finetune_examples", f"no finetuning-data sizes for method {method!r}")

    _check_transfer(config, fail)
    _check_data_source(config, fail)

    heldout = config["analysis"]["heldout"]
    hub_budgets = {t for f in hub.hub_families(config) for t in hub.sources(config, f)}
    grid_values = {
        "model": set(models) | {m for f in hub.hub_families(config) for m in families[f]["hub"]["models"]},
        "pretraining": set(models),
        "pretrain": {b for budgets in pretrain["budgets"].values() for b in budgets} | hub_budgets,
        "pet": {s for m in methods.values() for s in m.get("sizes", [])},
        "finetune_examples": {
            s for t in config["tasks"].values() for sizes in t["finetune_examples"].values() for s in sizes
        },
    }
    for axis, values in heldout.items():
        if axis == "finetune_examples" and values == "largest":
            continue  # a rule (each task and method's largest Df), not values to check
        for value in values:
            if value not in grid_values[axis]:
                fail(f"analysis.heldout.{axis}", f"{value!r} is not in the grid ({sorted(grid_values[axis])})")


def _check_pretraining(config: dict, fail) -> tuple[dict, dict]:
    """models and pretrain, required when a family pretrains (not for hub families alone); returns
    them (empty when absent)."""
    families = config["families"]
    pretraining = hub.pretraining_families(config)
    for key in ("models", "pretrain"):
        if pretraining and key not in config:
            fail(key, f"required: families {pretraining} pretrain their base models")
    models, pretrain = config.get("models", {}), config.get("pretrain", {"budgets": {}})
    if not pretraining:
        return models, pretrain
    if pretrain["base_model"] not in models:
        fail("pretrain.base_model", f"{pretrain['base_model']!r} is not one of models {list(models)}")
    if pretrain["lr_min"] > pretrain["lr_max"]:
        fail("pretrain.lr_min", f"{pretrain['lr_min']} is larger than lr_max {pretrain['lr_max']}")
    for family in pretrain["budgets"]:
        if family not in families:
            fail(f"pretrain.budgets.{family}", f"unknown family (families: {list(families)})")
        if hub.is_hub_family(config, family):
            fail(f"pretrain.budgets.{family}", "a hub family is not pretrained (its tokens are families.<family>.hub)")
    return models, pretrain


def _check_transfer(config: dict, fail) -> None:
    """Zero-shot sources only on translation tasks, other than the task's own two languages; and
    enough dev examples to draw the largest few-shot prompt's demonstrations from."""
    for name, task in config["tasks"].items():
        sources = task["zero_shot_sources"]
        if sources and task["type"] != "translation":
            fail(f"tasks.{name}.zero_shot_sources", "only a translation task has zero-shot directions")
        own = [lang for lang in sources if lang in (task.get("source_lang"), task.get("target_lang"))]
        if own:
            fail(f"tasks.{name}.zero_shot_sources", f"{own[0]!r} is the task's own source or target language")
        shots = grid.few_shot_shots(config, name)
        if shots and max(shots) > task["dev_examples"]:
            fail(
                f"evaluate.transfer.{grid.SHOTS_KEY[task['type']]}",
                f"{max(shots)} demonstrations exceed tasks.{name}.dev_examples {task['dev_examples']}",
            )


def _check_data_source(config: dict, fail) -> None:
    """An hf or local source names a dataset (or files) for every split the grid reads; the
    synthetic source generates only the languages it has grammars for."""
    data = config["data"]
    source = data["source"]
    if source == "synthetic":
        from ftscale.data.synthetic import LANGUAGES

        for name, family in config["families"].items():
            for lang in family.get("languages", []):
                if lang not in LANGUAGES:
                    fail(
                        f"families.{name}.languages",
                        f"the synthetic source has no language {lang!r} ({list(LANGUAGES)})",
                    )
        for name, task in config["tasks"].items():
            for key in ("source_lang", "target_lang", "languages", "zero_shot_sources"):
                for lang in [task[key]] if isinstance(task.get(key), str) else task.get(key, []):
                    if lang not in LANGUAGES:
                        fail(
                            f"tasks.{name}.{key}", f"the synthetic source has no language {lang!r} ({list(LANGUAGES)})"
                        )
        return
    if source not in data:
        fail(f"data.{source}", f"required when data.source is {source!r} (the datasets or files to read)")
    options = data[source]
    for family in config.get("pretrain", {}).get("budgets", {}):
        for lang in config["families"].get(family, {}).get("languages", []):
            if lang not in options.get("pretrain", {}):
                fail(f"data.{source}.pretrain", f"no corpus for language {lang!r} of family {family!r}")
    for name, task in config["tasks"].items():
        if name not in options.get("tasks", {}):
            fail(f"data.{source}.tasks", f"no train/dev/test data for task {name!r}")
        for lang in task["zero_shot_sources"]:
            if lang not in options.get("zero_shot", {}).get(name, {}):
                fail(
                    f"data.{source}.zero_shot",
                    f"no zero-shot set {lang!r} for task {name!r} (tasks.{name}.zero_shot_sources)",
                )


def read_yaml(path: str | Path) -> dict:
    """A config file's mapping; a file that is not one raises ConfigError `file:line:column: problem`
    (Snakemake's own reading of a --configfile names neither: `ftscale run` and the Snakefile call this first)."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))  # OSError: the caller's to word
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = error.context and error.context_mark and f"({error.context} at line {error.context_mark.line + 1})"
        what = " ".join(filter(None, [error.problem, context or error.context]))
        raise ConfigError(f"{where}: not valid YAML: {what or 'unreadable'}")
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {str(error).splitlines()[0]}")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: not a mapping of config keys (got {type(config).__name__})")
    return config


def check_data_files(config: dict) -> None:
    """A `local` source's files, all there (run at start-up: a missing one is named before any job)."""
    from ftscale.data.common import missing_files

    if config["data"]["source"] == "local":
        missing = missing_files(config)
        if missing:
            raise ConfigError(f"data.local: {len(missing)} file(s) not found: {', '.join(missing)}")


def load(path: str | Path) -> dict:
    """Read and validate a config file, and check its local data files are there (tools and tests;
    the Snakefile validates its own config)."""
    config = validate(read_yaml(path))
    check_data_files(config)
    return config
