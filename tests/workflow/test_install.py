"""A real install: `pip install .` (not editable) into a fresh venv, then, from another directory and
with no PYTHONPATH, `ftscale --help`, `ftscale grid` and a Snakemake dry run of the tiny study.

Offline and fast: the fresh venv has no pip and no packages of its own; a .pth file puts a copy of
this venv's site-packages on its path (symlinks, less any ftscale and .pth files), so only the
install under test provides ftscale."""

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.workflow.conftest import ROOT, TINY

pytestmark = pytest.mark.workflow


def dependencies_without_ftscale(target: Path) -> Path:
    """This venv's packages as symlinks in `target`: no ftscale (editable or not) and no .pth files."""
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not (entry.name.startswith(("ftscale", "__editable__")) or entry.suffix == ".pth"):
            (target / entry.name).symlink_to(entry)
    return target


def fresh_venv(root: Path) -> Path:
    """A venv at root/venv with this venv's packages but no ftscale and no pip of its own."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(f"{dependencies_without_ftscale(root / 'dependencies')}\n")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The fresh venv's bin/ with ftscale installed from a copy of the repository."""
    root = tmp_path_factory.mktemp("install")
    started = time.perf_counter()
    venv = fresh_venv(root)
    source = root / "source"  # pip builds in the tree it is given: not in the checkout
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", source)
    subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--no-cache-dir",
            str(source),
        ],
        check=True,
        env=clean_env(),
        cwd=root,
    )
    print(f"\nvenv + pip install .: {time.perf_counter() - started:.1f} s")
    return venv / "bin"


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(bin_dir: Path, *command, cwd: Path) -> subprocess.CompletedProcess:
    started = time.perf_counter()
    result = subprocess.run(
        [str(bin_dir / command[0]), *command[1:]], capture_output=True, text=True, cwd=cwd, env=clean_env()
    )
    print(f"{' '.join(map(str, command))[:60]}: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def test_the_installed_package_is_a_copy_with_its_schema(installed, tmp_path):
    where = run(
        installed,
        "python",
        "-c",
        "import ftscale.config as c; print(c.__file__); print(c.SCHEMA.is_file())",
        cwd=tmp_path,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(installed.parent) and where[1] == "True", where


def test_ftscale_help_and_grid_run_from_another_directory(installed, tmp_path):
    assert "grid" in run(installed, "ftscale", "--help", cwd=tmp_path).stdout
    grid = run(installed, "ftscale", "grid", str(TINY), "--json", "grid.json", cwd=tmp_path)
    assert (tmp_path / "grid.json").stat().st_size > 0, grid.stdout


def test_a_dry_run_of_the_tiny_study_from_another_directory(installed, tmp_path):
    result = run(
        installed,
        "python",
        "-m",
        "snakemake",
        "-s",
        ROOT / "Snakefile",
        "--dry-run",
        "--cores",
        "1",
        "--configfile",
        TINY,
        cwd=tmp_path,
    )
    assert "finetune" in result.stdout and "Job stats:" in result.stdout, result.stdout[-2000:]


def test_without_ftscale_installed_the_workflow_says_how_in_one_line(tmp_path):
    venv = fresh_venv(tmp_path)
    result = subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "snakemake",
            "-s",
            ROOT / "Snakefile",
            "--dry-run",
            "--cores",
            "1",
            "--configfile",
            TINY,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert result.returncode != 0
    lines = [
        line for line in (result.stdout + result.stderr).splitlines() if "ftscale" in line and "profile" not in line
    ]
    assert lines == [f"ftscale is not installed in this Python ({venv / 'bin' / 'python'}): pip install -e {ROOT}"], (
        result.stdout + result.stderr
    )
