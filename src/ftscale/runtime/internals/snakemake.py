"""Snakemake's internals (ftscale.runtime.internals): the incomplete-job markers, its per-job lookup
of a function's parameters, its process's garbage collector, and the SLURM plugin's start-up probe
(`python -m` this module is Snakemake without it: how `ftscale run` starts Snakemake)."""

from __future__ import annotations

import base64
import gc
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


def is_snakemake_command_line() -> bool:
    """Whether this process is Snakemake's command line (`snakemake`, `python -m snakemake`, or this
    module, which names itself so): a process that lives for one run, not one that parses a workflow
    through Snakemake's API (the tests, a notebook)."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return program.name == "snakemake" or (program.parent.name == "snakemake" and program.name == "__main__.py")


PAUSED = False  # pause_garbage_collection turned the collector off


def pause_garbage_collection() -> None:
    """Python's cyclic garbage collector off while Snakemake builds the DAG (the Snakefile calls this
    at parse time; `onstart:` calls resume_garbage_collection), in Snakemake's command line only.

    Why: the paper grid's DAG is millions of small objects (jobs, their files, params and resources)
    that live until the run ends, and the collector rescanned them about 3,900 times while a dry run
    built it: 15% of the dry run's CPU (timed with gc.callbacks; docs/speed.md). Nothing in the DAG is
    garbage: the peak memory of the dry run is the same with the collector off. A process that
    parses the workflow through the API keeps its collector as it was."""
    global PAUSED
    if is_snakemake_command_line() and gc.isenabled():
        gc.disable()
        PAUSED = True


def resume_garbage_collection() -> None:
    """The collector on again when the jobs start (not in a dry run: its process ends), with what
    exists then (the DAG) frozen out of its scans: it lives until the run ends anyway."""
    global PAUSED
    if PAUSED:
        gc.freeze()
        gc.enable()
        PAUSED = False


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
