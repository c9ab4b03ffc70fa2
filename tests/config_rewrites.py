"""Seeded rewrites of a config that keep its meaning (hypothesis is not a dependency): keys in
another order at every level, each mapping and list in flow or block style, strings plain or
quoted, comments gone, equal numbers spelled differently, or the whole config as JSON.

Every number in the configs this is used on sits where the schema wants a number, so an int may
be written as a float (8 -> 8.0) and a float as YAML 1.1 text (0.001 -> 1e-3, which PyYAML reads
as a string and ftscale.config reads back as the number).
"""

from __future__ import annotations

import json
import random

import yaml

FLOAT = "tag:yaml.org,2002:float"
STR = "tag:yaml.org,2002:str"


def float_spellings(value: float) -> list[tuple[str, str]]:
    """(YAML tag, text) of ways to write `value`: plain floats, and text that only the schema
    makes a number."""
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0")  # "1." from "1.000000"
    exponent = int(exponent)
    return [
        (FLOAT, repr(value)),
        (FLOAT, f"{mantissa}0e{exponent:+d}"),
        (FLOAT, f"{mantissa}e{exponent:+d}"),
        (FLOAT, f"{mantissa}0e{exponent:+03d}"),
        (STR, f"{mantissa.rstrip('.')}e{exponent}"),
    ]


def int_spellings(value: int) -> list[tuple[str, str]]:
    return [("tag:yaml.org,2002:int", str(value)), (FLOAT, f"{value}.0"), (FLOAT, f"{value}.")]


def shuffled(value, rng: random.Random):
    """`value` with the keys of every mapping in a random order (list order is meaning: kept)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: shuffled(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


def random_dumper(rng: random.Random) -> type:
    class Dumper(yaml.SafeDumper):
        pass

    def mapping(dumper, data):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=rng.random() < 0.4)

    def sequence(dumper, data):
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=rng.random() < 0.5)

    def number(dumper, data):
        spellings = float_spellings(data) if isinstance(data, float) else int_spellings(data)
        tag, text = rng.choice(spellings)
        return yaml.ScalarNode(tag, text)

    def string(dumper, data):
        return dumper.represent_scalar(STR, data, style=rng.choice([None, "'", '"']))

    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, sequence)
    Dumper.add_representer(int, number)
    Dumper.add_representer(float, number)
    Dumper.add_representer(str, string)
    return Dumper


def rewrite(config: dict, seed: int) -> tuple[str, str]:
    """(file suffix, text) of one rewrite of `config`: seed 0 is plain yaml.safe_dump, seed 1 JSON,
    every other seed a random YAML spelling."""
    rng = random.Random(seed)
    if seed == 0:
        return ".yaml", yaml.safe_dump(config)
    if seed == 1:
        return ".json", json.dumps(shuffled(config, rng), indent=rng.choice([None, 1, 4]))
    return ".yaml", yaml.dump(
        shuffled(config, rng), Dumper=random_dumper(rng), sort_keys=False, width=rng.choice([40, 80, 4096])
    )
