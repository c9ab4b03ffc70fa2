"""Every private internal of another library that ftscale relies on, in one place.

Each is used at the version requirements.txt pins (PINNED); tests/unit/test_internals.py runs each
against the installed library and fails, naming the internal, when a pin moves or the internal goes.
The libraries are imported inside the functions: this module sits at the bottom of the package (the
data and analysis environments have no torch).

- Snakemake's file persistence: `.snakemake/incomplete/` marks the outputs of unfinished jobs, each
  file named by the urlsafe base64 of the output path, split into '@'-prefixed directories of at most
  255 characters (snakemake.persistence.file.FilePersistence._record_path).
- Snakemake's `snakemake.common.get_function_params`: the signature of every input, params, resources
  and group function, asked again for each job (inspect.signature: 430,000 calls in the paper grid's
  dry run); cached here, since a function's parameters never change.
- transformers' `Adafactor._get_options(group, shape)` -> (factored, use_first_moment): which state a
  parameter gets, which the sharded set-up creates itself (train.distributed.init_adafactor_state).
- datasets' `Dataset._fingerprint`: the hash of a loaded dataset's content and transforms, recorded
  with what a data job read (data.hf).
- A causal LM's decoder layers: no public accessor across architectures (Llama's `model.layers`,
  GPT-NeoX's `gpt_neox.layers`, GPT-2's `transformer.h`); found as the one ModuleList of
  `config.num_hidden_layers` modules.
"""

from __future__ import annotations

import base64
import inspect
from pathlib import Path

# The versions the internals below were read from (requirements.txt pins the same; a test compares).
PINNED = {"snakemake": "9.27.1", "transformers": "5.23.0", "datasets": "5.2.0", "torch": "2.13.0"}

SNAKEMAKE_INCOMPLETE = Path(".snakemake") / "incomplete"  # Snakemake's marks of unfinished jobs' outputs


def snakemake_incomplete_outputs(workdir: Path) -> list[str]:
    """Outputs of the jobs a killed run left unfinished, decoded from the markers under
    workdir/.snakemake/incomplete (markers of another format are left to Snakemake)."""
    found = []
    markers = workdir / SNAKEMAKE_INCOMPLETE
    for marker in sorted(markers.rglob("*") if markers.is_dir() else []):
        if not marker.is_file() or marker.name == "migration_underway":
            continue
        encoded = "".join(part.lstrip("@") for part in marker.relative_to(markers).parts)
        try:
            found.append(base64.urlsafe_b64decode(encoded).decode())
        except ValueError:
            continue
    return found


def cache_snakemake_function_params() -> None:
    """Make Snakemake look up each function's parameters once, not once per job (the Snakefile calls
    this at parse time). A bound method is keyed by its function, apart from the function itself:
    its parameters lack `self`, the same for every instance (Snakemake binds one per resource)."""
    import snakemake.common
    import snakemake.jobs
    import snakemake.rules

    uncached = snakemake.common.get_function_params
    if getattr(uncached, "ftscale_cached", False):
        return
    known = {}

    def get_function_params(func):
        key = (func.__func__, "bound") if inspect.ismethod(func) else func
        try:
            return known[key]
        except KeyError:
            known[key] = uncached(func)
            return known[key]
        except TypeError:  # an unhashable callable
            return uncached(func)

    get_function_params.ftscale_cached = True
    # rules and jobs imported the function by name; snakemake.common's own callers find it there
    for module in (snakemake.common, snakemake.rules, snakemake.jobs):
        module.get_function_params = get_function_params


def adafactor_options(optimizer, group: dict, shape) -> tuple[bool, bool]:
    """(factored, use_first_moment) of a parameter of this shape in this group: the state
    transformers' Adafactor gives it."""
    return optimizer._get_options(group, shape)


def dataset_fingerprint(dataset) -> str | None:
    """A loaded `datasets.Dataset`'s fingerprint (None for a dataset without one)."""
    return getattr(dataset, "_fingerprint", None)


def decoder_layers(causal_lm):
    """The decoder's list of layers (FSDP's units), wherever the architecture keeps it: the one
    torch.nn.ModuleList of `config.num_hidden_layers` modules."""
    import torch

    count = causal_lm.config.num_hidden_layers
    found = [m for m in causal_lm.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count]
    if not found:
        raise ValueError(f"{type(causal_lm).__name__}: no list of its {count} decoder layers to shard")
    return found[0]
