"""A finetune job in time-limited segments through real Snakemake and the real rule script: a segment
ends with exit code 75 and one log line, `--retries` resubmits it, and the job finishes where an
uninterrupted run finishes."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from ftscale import config as configuration
from ftscale.plan import grid
from ftscale.train import finetune
from tests.tiny_base import FINETUNE_OPTIONS
from tests.workflow.conftest import ROOT, SNAKEMAKE

pytestmark = pytest.mark.workflow
RUN = dict(
    method="lora",
    pet_size=2,
    learning_rate=1e-1,
    batch_size=4,
    parameter_scaling=False,
    max_steps=3,
    max_epochs=100,
    eval_every=1,
    patience=2,
    finetune_examples=16,
    max_source=32,
    max_target=32,
    seed=5,
    **FINETUNE_OPTIONS,
)
# the rule script names its condition from the study's config: the toy's, without curves
CONFIG = configuration.validate(
    yaml.safe_load((ROOT / "config.yaml").read_text()) | {"tracking": {"tensorboard": False}}
)
CONDITION = next(name for name, c in grid.expand_conditions(CONFIG).items() if c.method == "lora")
SNAKEFILE = """
configfile: "config.json"

rule finetune:
    input:
        base="base", train="task/train", dev="task/dev",
    output:
        checkpoint=directory("finetune/{{condition}}/seed{{seed}}/checkpoint"),
        summary="finetune/{{condition}}/seed{{seed}}/train.json",
    params:
        run={run},
        resume="resume/{{condition}}/seed{{seed}}.pt",
    resources:
        segment_seconds="1e-9",
    log:
        "logs/{{condition}}/seed{{seed}}.log",
    script:
        "{script}"
"""
TARGET = f"finetune/{CONDITION}/seed0/train.json"


def snakemake(workdir, *args):
    env = dict(os.environ, FTSCALE_WORKER="0")  # the job in its own process, as on a SLURM node
    return subprocess.run(
        [str(SNAKEMAKE), "-s", "Snakefile", "--cores", "1", *args, TARGET],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )


def test_segments_exit_75_and_retries_continue_to_the_uninterrupted_result(base, tmp_path):  # noqa: F811
    straight = finetune.finetune(
        base_dir=base / "base",
        train_dir=base / "task" / "train",
        dev_dir=base / "task" / "dev",
        out_dir=tmp_path / "straight",
        **RUN,
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name in ("base", "task"):
        shutil.copytree(base / name, workdir / name)
    (workdir / "Snakefile").write_text(SNAKEFILE.format(run=RUN, script=ROOT / "scripts" / "finetune.py"))
    (workdir / "config.json").write_text(json.dumps(CONFIG))

    first = snakemake(workdir)
    assert first.returncode != 0 and "exit status 75" in first.stdout + first.stderr
    log = (workdir / "logs" / CONDITION / "seed0.log").read_text()
    assert "saved at step 1; resubmit to continue\n" in log and "Traceback" not in log
    assert (workdir / "resume" / CONDITION / "seed0.pt").exists() and not (workdir / TARGET).exists()

    second = snakemake(workdir, "--retries", "5")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (
        f"resumed from resume/{CONDITION}/seed0.pt at step 2"
        in (workdir / "logs" / CONDITION / "seed0.log").read_text()
    )
    summary = json.loads((workdir / TARGET).read_text())
    timing = ("train_seconds", "first_step_at", "target_tokens")
    assert {k: v for k, v in summary.items() if k not in timing} == {
        k: v for k, v in straight.items() if k not in timing
    }
    assert not (workdir / "resume" / CONDITION / "seed0.pt").exists()
