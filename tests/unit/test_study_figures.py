"""The workflow draws only figures with data: without transfer jobs (the toy: evaluate.transfer.axes
[]) the zero- and few-shot figures are not outputs of the figures rule, nor in the report; with
them (tests/configs/tiny.yaml) every figure is (tests/unit/test_plan.py)."""

import re
import subprocess
import sys
from pathlib import Path

from ftscale import outputs

ROOT = Path(__file__).resolve().parents[2]


def figures_rule_outputs(config: Path, workdir: Path) -> set[str]:
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile"), "-n", "figures"]
        + ["--directory", str(workdir), "--configfile", str(config)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    block = listing.split("rule figures:", 1)[1]
    return {Path(path).stem for path in re.search(r"^\s+output: (.*)$", block, re.M).group(1).split(", ")}


def test_a_study_without_transfer_jobs_draws_no_transfer_figure(tmp_path):
    drawn = figures_rule_outputs(ROOT / "config.yaml", tmp_path)
    assert drawn == set(outputs.FIGURES) - set(outputs.TRANSFER_FIGURES)
    assert drawn == set(outputs.study_figures(has_transfer=False))
    assert set(outputs.study_figures(has_transfer=True)) == set(outputs.FIGURES)
