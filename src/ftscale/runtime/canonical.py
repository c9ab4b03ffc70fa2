"""The config in one canonical form, so that staleness follows meaning, not formatting.

Snakemake decides "params changed" by comparing repr() of every params value with the one it
recorded in .snakemake/metadata. repr() of a dict follows its insertion order, and 1000 and 1000.0
print differently, so a config written with keys in another order, loaded from JSON (an
OrderedDict), or with an equal number spelled another way would rerun every job. The workflow
canonicalises its config once, right after validation (rules/common.smk); every params value
derived from it is then canonical, whichever rule builds it and however it is built.

The canonical form: plain dicts with their keys sorted at every level, list order kept (a list's
order can mean something: a family's languages), and each number written one way, an integral
float becoming an int (1000.0 -> 1000, 8.0 -> 8) as JSON, which has one kind of number, reads it.
"""

from __future__ import annotations

from collections.abc import Mapping


def canonical(value):
    """`value` in canonical form (a new object; `value` is left as it was)."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonicalize(config: dict) -> dict:
    """Put `config` in canonical form in place and return it: Snakemake's `config` is one object that
    the rules and the job scripts (snakemake.config) share, so it is rewritten, not rebound."""
    form = canonical(config)
    config.clear()
    config.update(form)
    return config
