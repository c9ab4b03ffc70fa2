"""Snakemake's internals (ftscale.runtime.internals): the incomplete-job markers and its per-job
lookup of a function's parameters."""

from __future__ import annotations

import base64
import inspect
from pathlib import Path

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
