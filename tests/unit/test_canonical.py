"""The canonical config: equal meaning, equal form (what Snakemake's params comparison sees)."""

import collections
import json

import pytest
import yaml

from ftscale import config as study_config
from ftscale.runtime.canonical import canonical
from tests.config_rewrites import rewrite
from tests.conftest import TINY


def load_like_snakemake(suffix: str, text: str):
    """As snakemake.common.configfile reads a config file: JSON into OrderedDicts, else YAML (FullLoader)."""
    if suffix == ".json":
        return json.loads(text, object_pairs_hook=collections.OrderedDict)
    return yaml.load(text, Loader=yaml.FullLoader)


def test_canonical_sorts_keys_at_every_level_and_keeps_list_order():
    value = collections.OrderedDict([("b", {"y": [3, 1], "x": 1.0}), ("a", 2)])
    form = canonical(value)
    assert repr(form) == "{'a': 2, 'b': {'x': 1, 'y': [3, 1]}}"
    assert type(form) is dict and list(value) == ["b", "a"]  # the input is left as it was


def test_equal_numbers_get_one_spelling():
    assert (
        repr(canonical([1000.0, 1e3, 1000, 1.0e-3, 0.001, True, 0.5])) == "[1000, 1000, 1000, 0.001, 0.001, True, 0.5]"
    )


def test_validate_returns_the_canonical_config_in_place(tiny_config):
    same = tiny_config
    result = study_config.validate(tiny_config)
    assert result is same and list(result) == sorted(result)
    assert list(result["models"]["m1"]) == sorted(result["models"]["m1"])


@pytest.fixture(scope="module")
def canonical_tiny() -> str:
    return repr(study_config.validate(yaml.safe_load(TINY.read_text())))


@pytest.mark.parametrize("seed", range(16))
def test_every_rewrite_validates_to_the_same_config(tiny_config, canonical_tiny, seed):
    suffix, text = rewrite(tiny_config, seed)
    assert text != yaml.safe_dump(tiny_config, sort_keys=False)  # a rewrite, not the same file
    # (the top level keeps its type, in place: Snakemake's config object; params carry what is inside)
    assert repr(dict(study_config.validate(load_like_snakemake(suffix, text)))) == canonical_tiny


def test_numbers_yaml_reads_as_text_are_read_where_the_schema_wants_a_number(tiny_config):
    text = yaml.safe_dump(tiny_config).replace("learning_rate: 0.3", "learning_rate: 3e-1")
    text = text.replace("pretrain_lines: 1500", "pretrain_lines: 1.5e3").replace("study: tiny", "study: 1e3")
    config = yaml.safe_load(text)
    assert config["finetune"]["methods"]["prompt"]["learning_rate"] == "3e-1"  # PyYAML: a string
    config = study_config.validate(config)
    assert config["finetune"]["methods"]["prompt"]["learning_rate"] == 0.3
    assert repr(config["data"]["pretrain_lines"]) == "1500"
    assert config["study"] == "1e3"  # a string where the schema wants one


def test_text_that_is_no_number_is_still_a_one_line_error(tiny_config):
    tiny_config["finetune"]["methods"]["fmt"]["learning_rate"] = "1e-3x"
    with pytest.raises(
        study_config.ConfigError, match=r"^finetune\.methods\.fmt\.learning_rate: '1e-3x' is not of type 'number'$"
    ):
        study_config.validate(tiny_config)


def test_an_integer_key_still_rejects_a_fraction(tiny_config):
    tiny_config["finetune"]["seeds"] = "2.5e0"
    with pytest.raises(study_config.ConfigError, match=r"^finetune\.seeds: 2\.5 is not of type 'integer'$"):
        study_config.validate(tiny_config)
