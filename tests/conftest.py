import copy
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


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
