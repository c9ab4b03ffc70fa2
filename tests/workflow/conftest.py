"""Run the real workflow (real Snakemake, real training) on the tiny config in a scratch directory."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, config: Path = TINY, check: bool = True) -> subprocess.CompletedProcess:
    command = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        str(config),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def planned_jobs(workdir: Path, config: Path = TINY) -> dict[str, int]:
    """Jobs per rule that a dry run would execute ({} when nothing is to be done)."""
    out = snakemake(workdir, "--dry-run", "--cores", "1", config=config).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    return {
        rule: int(count)
        for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)
        if rule not in ("total", "all")
    }


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# The fixtures tiny_run and tiny_copy are in tests/conftest.py: tests/faults/ shares the one run.
