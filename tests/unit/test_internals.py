"""ftscale.runtime.internals against the installed libraries: each private internal still does what
ftscale reads it for, at the versions requirements.txt pins. A failure names the internal and the pin,
so a version bump says what to re-read."""

import inspect
import re
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftscale.runtime import internals
from ftscale.runtime.internals import datasets as datasets_internals
from ftscale.runtime.internals import snakemake as snakemake_internals
from ftscale.runtime.internals import transformers as transformers_internals

ROOT = Path(__file__).resolve().parents[2]

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def pinned(package: str) -> str:
    match = re.search(rf"^{package}==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, f"requirements.txt pins no {package}"
    return match.group(1)


def gone(name: str, package: str) -> str:
    return (
        f"{name} no longer behaves as ftscale.runtime.internals reads it ({package} {version(package)}, "
        f"read at {internals.PINNED[package]}): re-read it in the new {package}"
    )


@pytest.mark.parametrize("package", sorted(internals.PINNED))
def test_the_internals_were_read_at_the_pinned_versions(package):
    assert pinned(package) == internals.PINNED[package], (
        f"requirements.txt now pins {package}=={pinned(package)}; ftscale.runtime.internals was read at "
        f"{internals.PINNED[package]}: check each of its {package} internals, then update PINNED"
    )
    installed = version(package).split("+")[0]  # torch's local label (+cpu, +cu128) is the same release
    assert installed == pinned(package), f"installed {package} {version(package)} is not the pinned one"


def test_incomplete_markers_are_decoded_as_snakemake_writes_them(tmp_path):
    from snakemake.persistence.file import FilePersistence

    outputs = ["results/tiny/metrics.csv", "results/tiny/finetune/" + "x" * 300 + "/checkpoint"]  # one path > 255
    persistence = SimpleNamespace(_fetch_max_len=lambda subject: 255)  # Snakemake's own encoder, on its own
    for output in outputs:
        marker = Path(
            FilePersistence._record_path(persistence, str(tmp_path / snakemake_internals.SNAKEMAKE_INCOMPLETE), output)
        )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("{}")
    assert sorted(snakemake_internals.snakemake_incomplete_outputs(tmp_path)) == sorted(outputs), gone(
        "FilePersistence._record_path", "snakemake"
    )
    assert snakemake_internals.snakemake_incomplete_outputs(tmp_path / "nothing") == []


def test_snakemake_asks_each_functions_parameters_once():
    import snakemake.common
    import snakemake.jobs
    import snakemake.rules

    for module in (snakemake.common, snakemake.rules, snakemake.jobs):
        assert hasattr(module, "get_function_params"), gone(f"{module.__name__}.get_function_params", "snakemake")
    snakemake_internals.cache_snakemake_function_params()
    snakemake_internals.cache_snakemake_function_params()  # twice: still one cache, not a cache of a cache
    cached = snakemake.rules.get_function_params
    assert (
        cached.ftscale_cached and snakemake.common.get_function_params is cached is snakemake.jobs.get_function_params
    )

    def input_function(wildcards, attempt):
        return []

    class Resource:
        def evaluate(self, wildcards, threads):
            return 1

    lambda_function = lambda wc, input: []  # noqa: E731
    for func in (input_function, lambda_function, Resource().evaluate, Resource().evaluate):
        assert cached(func) is cached(func)  # looked up once
        assert list(cached(func)) == list(inspect.signature(func).parameters)
    assert "self" in cached(Resource.evaluate) and "self" not in cached(Resource().evaluate)
    # Snakemake's own caller sees the cached parameters
    aux = snakemake.common.get_input_function_aux_params(input_function, {"attempt": 1, "threads": 2})
    assert aux == {"attempt": 1}, gone("get_input_function_aux_params", "snakemake")


def test_snakemake_checks_a_rules_script_once(tmp_path, monkeypatch):
    """Snakemake's per-job check that a rule's script exists, done once per rule (each time where
    the path has a wildcard in it, or the script is missing)."""
    import snakemake.api  # noqa: F401 (snakemake.dag imported first is a circular import)
    import snakemake.script
    from snakemake.dag import ScriptProcessor
    from snakemake.exceptions import WorkflowError
    from snakemake.iocontainers import Wildcards
    from snakemake.sourcecache import SourceCache

    (tmp_path / "present.py").write_text("pass\n")
    reads = []
    get_source = snakemake.script.get_source
    monkeypatch.setattr(snakemake.script, "get_source", lambda *args: reads.append(args[0]) or get_source(*args))
    monkeypatch.setattr(ScriptProcessor, "process_job", ScriptProcessor.process_job)  # undone after the test
    snakemake_internals.check_each_script_once()
    snakemake_internals.check_each_script_once()  # twice: still one check, not a check of a check
    dag = SimpleNamespace(workflow=SimpleNamespace(sourcecache=SourceCache(tmp_path / "cache")))
    processor = ScriptProcessor(dag)

    def job(rule, script, **wildcards):
        rule = SimpleNamespace(name=rule, script=script, basedir=str(tmp_path))
        return SimpleNamespace(is_script=True, rule=rule, wildcards=Wildcards(fromdict=wildcards), params={})

    for _ in range(3):
        processor.process_job(job("plain", "present.py"))
        processor.process_job(job("formatted", "{wildcards.name}.py", name="present"))
        with pytest.raises((WorkflowError, OSError)):  # Snakemake stops the run
            processor.process_job(job("missing", "missing.py"))
    assert reads == ["present.py"] + ["{wildcards.name}.py", "missing.py"] * 3, gone(
        "ScriptProcessor.process_job", "snakemake"
    )


def test_adafactor_options_say_which_parameters_are_factored():
    import torch
    from transformers.optimization import Adafactor

    matrix, vector = torch.nn.Parameter(torch.zeros(4, 3)), torch.nn.Parameter(torch.zeros(3))
    for beta1, first_moment in ((None, False), (0.9, True)):
        optimizer = Adafactor([matrix, vector], lr=1e-3, relative_step=False, scale_parameter=False, beta1=beta1)
        group = optimizer.param_groups[0]
        assert transformers_internals.adafactor_options(optimizer, group, matrix.shape) == (True, first_moment), gone(
            "Adafactor._get_options", "transformers"
        )
        assert transformers_internals.adafactor_options(optimizer, group, vector.shape) == (False, first_moment)


def test_a_datasets_fingerprint_follows_its_content():
    import datasets

    one, same, other = (datasets.Dataset.from_dict({"text": rows}) for rows in (["a", "b"], ["a", "b"], ["a", "c"]))
    fingerprint = datasets_internals.dataset_fingerprint(one)
    assert isinstance(fingerprint, str) and fingerprint, gone("Dataset._fingerprint", "datasets")
    assert datasets_internals.dataset_fingerprint(same) == fingerprint != datasets_internals.dataset_fingerprint(other)
    assert datasets_internals.dataset_fingerprint(object()) is None


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_decoder_layers_are_found_whatever_the_architecture(architecture):
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    small = {"vocab_size": 32}
    if architecture == "llama":
        config = LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2, **small)
        where = lambda model: model.model.layers  # noqa: E731
    else:
        config = GPT2Config(n_embd=16, n_layer=3, n_head=2, **small)
        where = lambda model: model.transformer.h  # noqa: E731
    model = AutoModelForCausalLM.from_config(config)
    assert transformers_internals.decoder_layers(model) is where(model), gone("the layers' ModuleList", "transformers")
    model.config.num_hidden_layers = 5
    with pytest.raises(ValueError, match="no list of its 5 decoder layers"):
        transformers_internals.decoder_layers(model)


SCONTROL = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
echo "MinJobAge               = 3600 sec"
"""
PROBE = """
import sys
from ftscale.runtime.internals import snakemake as snakemake_internals
if sys.argv[1] == "skip":
    assert snakemake_internals.skip_slurm_probe()
from snakemake_executor_plugin_slurm import get_min_job_age
print(get_min_job_age())
"""


def test_the_slurm_plugins_start_up_probe_is_skipped_and_its_status_query_kept(tmp_path):
    """Imported, the SLURM plugin runs `scontrol show config` for a help text (10 s where no controller
    answers); skipped, it does not, and the MinJobAge query of a SLURM run still asks scontrol."""
    import os
    import subprocess
    import sys

    for tool in ("scontrol", "sinfo", "squeue"):  # the plugin probes only where SLURM's tools are
        (tmp_path / tool).write_text(SCONTROL)
        (tmp_path / tool).chmod(0o755)
    env = os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    calls = tmp_path / "calls"
    for mode, probes in (("import", ["show config"]), ("skip", [])):
        calls.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["3600"], gone("get_min_job_age", "snakemake-executor-plugin-slurm")
        asked = calls.read_text().splitlines() if calls.exists() else []
        assert asked == [*probes, "show config"], gone(
            "the plugin's import-time probe", "snakemake-executor-plugin-slurm"
        )


def test_the_garbage_collector_pauses_only_in_snakemakes_command_line(monkeypatch):
    import gc

    assert gc.isenabled()
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    snakemake_internals.pause_garbage_collection()  # a workflow parsed through the API (this test)
    assert gc.isenabled()
    for program in ("/venv/bin/snakemake", "/venv/lib/site-packages/snakemake/__main__.py"):
        monkeypatch.setattr(sys, "argv", [program, "-n"])
        frozen = gc.get_freeze_count()
        try:
            snakemake_internals.pause_garbage_collection()
            assert not gc.isenabled()
            snakemake_internals.resume_garbage_collection()
            assert gc.isenabled() and gc.get_freeze_count() > frozen
        finally:
            gc.enable()
            gc.unfreeze()


GC_PROBE = """
import atexit, gc, json, sys
atexit.register(lambda: print("GC", json.dumps([gc.isenabled(), gc.get_freeze_count() > 0])))
from ftscale.runtime.internals.snakemake import main
main(sys.argv[1:])
"""


def test_snakemake_builds_the_dag_without_the_garbage_collector_and_runs_jobs_with_it(tmp_path):
    """Through the real Snakefile: a dry run ends with the collector still off (it was off while the
    DAG was built); a run turns it back on (onstart) before its jobs, the DAG frozen out of its scans."""
    import json
    import subprocess

    target = "results/toy/data/raw/pretrain_ende/manifest.json"
    states = []
    for dry in (["-n"], []):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                GC_PROBE,
                "-s",
                str(ROOT / "Snakefile"),
                "-d",
                str(tmp_path),
                "--cores",
                "1",
                *dry,
                target,
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        states.append(json.loads(done.stdout.rsplit("GC ", 1)[1]))
    assert states == [[False, False], [True, True]]
    assert (tmp_path / target).exists()
