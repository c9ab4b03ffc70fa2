"""Conda mode (snakemake --sdm conda) where there is no conda: the run stops at start-up with one
line of ours, not a traceback or Snakemake's WorkflowError from `conda info`. With conda, the
environments' contents are checked offline by tests/unit/test_envs.py (README, "Conda mode")."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.workflow.conftest import ROOT, SNAKEMAKE, TINY

pytestmark = pytest.mark.workflow


def test_conda_mode_without_conda_stops_at_start_up_with_one_line(tmp_path):
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "conda").exists()]
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--dry-run",
            "--cores",
            "1",
            "--sdm",
            "conda",
            "--configfile",
            str(TINY),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": os.pathsep.join(path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    ours = [line for line in output.splitlines() if "conda" in line.lower() and "profile" not in line]
    assert ours == [
        "Conda mode (--sdm conda): no conda on PATH; install one (e.g. Miniforge) or run without --sdm conda"
    ], output
    assert "Traceback" not in output and "WorkflowError" not in output
    assert not (tmp_path / ".snakemake" / "conda").exists()
