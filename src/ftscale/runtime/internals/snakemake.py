"""Snakemake's internals (ftscale.runtime.internals): the incomplete-job markers, its per-job lookup
of a function's parameters, and the SLURM plugin's start-up probe (`python -m` this module is
Snakemake without it: how `ftscale run` starts Snakemake)."""

from __future__ import annotations

import base64
import importlib.util
import inspect
import sys
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


def check_each_script_once() -> None:
    """Make Snakemake check that a rule's script exists once per rule, not once per job: its
    ScriptProcessor reads the whole script for every job (9,496 reads in the paper grid's dry run, a
    tenth of its CPU time). A script path with a wildcard or param in it is checked for each job still.
    The Snakefile calls this at parse time."""
    import snakemake.api  # noqa: F401 (snakemake.dag imported first is a circular import)
    from snakemake.dag import ScriptProcessor

    unchecked = ScriptProcessor.process_job
    if getattr(unchecked, "ftscale_once", False):
        return
    checked = set()

    def process_job(self, job) -> None:
        entry = str(getattr(job.rule, self.script_type, None))
        key = (self.script_type, job.rule.name, entry)
        if key not in checked:
            unchecked(self, job)  # raises where the script is missing: not recorded then
            if "{" not in entry:
                checked.add(key)

    process_job.ftscale_once = True
    ScriptProcessor.process_job = process_job


SLURM_PLUGIN = "snakemake_executor_plugin_slurm"


def skip_slurm_probe() -> bool:
    """Keep the SLURM executor plugin from running `scontrol show config` when it is imported; True if
    it will not. Snakemake's command line imports every installed executor plugin on every run, local
    ones too, and this plugin writes the help of --slurm-status-command there from what scontrol says
    (`should_recommend_squeue_status_command`): where a SLURM client is installed but no controller
    answers, that waits up to its 10 s timeout. Only that help text reads the probe, so it is stubbed
    in the plugin's job_status_query module, loaded here before the package that binds it by name;
    `get_min_job_age`, which a SLURM run uses, is left as it is. Call before Snakemake is imported."""
    plugin = importlib.util.find_spec(SLURM_PLUGIN)  # a top-level spec: found, not executed
    if plugin is None or SLURM_PLUGIN in sys.modules:
        return plugin is None
    name = f"{SLURM_PLUGIN}.job_status_query"
    spec = importlib.util.spec_from_file_location(
        name, Path(plugin.submodule_search_locations[0]) / "job_status_query.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.should_recommend_squeue_status_command = lambda *args, **kwargs: False
    return True


def main(argv: list[str]) -> None:
    """Snakemake's command line, the SLURM probe skipped unless its help is asked for."""
    if not {"-h", "--help"} & set(argv):
        skip_slurm_probe()
    from snakemake.cli import main as snakemake_main

    sys.argv = ["snakemake", *argv]
    snakemake_main()


if __name__ == "__main__":
    main(sys.argv[1:])
