"""`ftscale --version`: the version of pyproject.toml (its one home), exit status 0."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_the_version_of_pyproject_and_exits_0():
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "ftscale.cli", "--version"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ftscale {expected}\n"
