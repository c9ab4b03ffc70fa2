"""transformers' and torch's internals (ftscale.runtime.internals): Adafactor's per-parameter options
and a causal LM's decoder layers."""

from __future__ import annotations


def adafactor_options(optimizer, group: dict, shape) -> tuple[bool, bool]:
    """(factored, use_first_moment) of a parameter of this shape in this group: the state
    transformers' Adafactor gives it."""
    return optimizer._get_options(group, shape)


def decoder_layers(causal_lm):
    """The decoder's list of layers (FSDP's units), wherever the architecture keeps it: the one
    torch.nn.ModuleList of `config.num_hidden_layers` modules."""
    import torch

    count = causal_lm.config.num_hidden_layers
    found = [m for m in causal_lm.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count]
    if not found:
        raise ValueError(f"{type(causal_lm).__name__}: no list of its {count} decoder layers to shard")
    return found[0]
