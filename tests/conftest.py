import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


@pytest.fixture(scope="session", autouse=True)
def slurm_controller_up():
    """Snakemake's SLURM plugin runs `scontrol show config` at every Snakemake start, local runs
    included; while SLURM is configured but its controller is stopped, that call waits about 9 s.
    Under CI the slurm tests start the local cluster anyway: where SLURM is already installed, start
    it before the other folders' dozens of Snakemake starts (a failure here is the slurm tests' to report)."""
    if os.environ.get("CI") == "true" and os.geteuid() == 0 and shutil.which("slurmctld"):
        subprocess.run(["bash", str(ROOT / "tests" / "slurm" / "local-cluster.sh"), "start"], capture_output=True)
    yield


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny pretrained base model and a tokenized translation task (tests/tiny_base.py)."""
    from tests import tiny_base

    return tiny_base.build(tmp_path_factory.mktemp("resume"))


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(yaml.safe_load(TINY.read_text()))


@pytest.fixture
def toy_config() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny study run once, end to end, through real Snakemake; tests that change it work on a
    copy. Here, so that tests/workflow/ and tests/faults/ share the one run."""
    from tests.workflow.conftest import snakemake

    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture
def tiny_copy(tiny_run, tmp_path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    return workdir
