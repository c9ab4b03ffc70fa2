"""ruff, configured in pyproject.toml ([tool.ruff]) and pinned in requirements.txt, finds no defect in
the tree (lint) and finds it in one style (import order and format: `ruff check --select I --fix .`
then `ruff format .` rewrite it so)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_is_the_pinned_version():
    pinned = re.search(r"^ruff==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert ruff("--version").stdout.split() == ["ruff", pinned], "pip install -r requirements.txt"


def test_lint_finds_no_defects():
    result = ruff("check", "--extend-ignore", "I", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_are_sorted_and_the_code_formatted():
    imports = ruff("check", "--select", "I", "--output-format", "concise", ".")
    assert imports.returncode == 0, imports.stdout + imports.stderr
    formatted = ruff("format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
