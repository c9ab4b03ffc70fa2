"""The grid preview (ftscale.plan, `ftscale grid`): its job counts are Snakemake's, its parameter
counts are the real models', and its compute follows 6ND / 2ND."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftscale import cli, grid, plan
from ftscale.model import count_parameters, new_model

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny() -> dict:
    return yaml.safe_load(TINY.read_text())


def test_parameter_counts_are_the_built_models(tiny):
    for name, size in tiny["models"].items():
        model = new_model(size, tiny["data"]["tokenizer_vocab_size"], 256, seed=0)
        assert plan.model_parameters(tiny, name) == count_parameters(model), name


def test_job_counts_equal_snakemakes_dry_run(tiny, tmp_path):
    dry = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile"), "-n",
                          "--directory", str(tmp_path), "--configfile", str(TINY)],
                         capture_output=True, text=True, check=True).stdout
    table = dry.split("Job stats:", 1)[1]
    planned = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M) if rule not in ("all", "total")}
    assert plan.summarize(tiny)["jobs"] == planned


def test_compute_is_6nd_for_training_and_scales_with_utilisation(tiny):
    summary = plan.summarize(tiny, gpu_peak_tflops=100.0, utilisation=0.5)
    jobs = grid.pretrain_jobs(tiny, grid.expand_conditions(tiny))   # a run's checkpoints cost nothing more
    expected = sum(6 * plan.model_parameters(tiny, job.model) * job.tokens for job in jobs.values())
    assert summary["flops"]["pretrain"] == expected
    assert summary["gpu_hours_per_stage"]["pretrain"] == pytest.approx(expected / (100e12 * 0.5) / 3600)
    slower = plan.summarize(tiny, gpu_peak_tflops=100.0, utilisation=0.25)
    assert slower["gpu_hours"] == pytest.approx(2 * summary["gpu_hours"])
    assert summary["finetune_runs"] == len(grid.expand_conditions(tiny)) * tiny["finetune"]["seeds"]


def test_finetune_steps_stop_at_the_epoch_cap(tiny):
    condition = next(iter(grid.expand_conditions(tiny).values()))
    capped = {**tiny, "finetune": {**tiny["finetune"], "max_steps": 10**9, "max_epochs": 2}}
    batch = tiny["finetune"]["methods"][condition.method]["batch_size"]
    assert plan.finetune_steps(capped, condition) == 2 * -(-condition.finetune_examples // batch)


def test_grid_command_writes_grid_json(tmp_path, capsys):
    out = tmp_path / "grid.json"
    assert cli.main(["grid", str(TINY), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert {"pretrain_runs", "finetune_runs", "gpu_hours", "jobs", "flops"} <= set(written)
    assert "jobs per rule" in capsys.readouterr().out


def test_grid_command_bad_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("seeds: 2", "seeds: -1"))
    assert cli.main(["grid", str(bad), "--json", str(tmp_path / "g.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ftscale grid:") and "finetune.seeds" in error and "\n" not in error
    assert cli.main(["grid", str(tmp_path / "missing.yaml")]) == 2
