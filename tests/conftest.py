import copy
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
