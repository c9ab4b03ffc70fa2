"""The workflow draws only figures with data: without transfer jobs (the toy: evaluate.transfer.axes
[]) the zero- and few-shot figures are not outputs of the figures rule, nor in the report; with
few-shot prompts but no zero-shot set (summarization 1-shot alone), the few-shot figures only; with
both (tests/configs/tiny.yaml) every figure is (tests/unit/test_plan.py)."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

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
    assert drawn == set(outputs.study_figures(zero_shot=False, few_shot=False))
    assert set(outputs.study_figures(zero_shot=True, few_shot=True)) == set(outputs.FIGURES)


def test_summarization_few_shot_alone_draws_the_few_shot_figures_and_no_zero_shot_one(tmp_path):
    """The toy with summarization 1-shot on its model axis (evaluate.transfer.summarization_shots)
    and no zero-shot sets: the few-shot figures are drawn, the zero-shot figure (blank) is not."""
    toy = yaml.safe_load((ROOT / "config.yaml").read_text())
    toy["evaluate"]["transfer"] |= {"axes": ["model"], "few_shot_shots": [], "summarization_shots": [1]}
    for task in toy["tasks"].values():
        task.pop("zero_shot_sources", None)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(toy))
    drawn = figures_rule_outputs(tmp_path / "c.yaml", tmp_path)
    assert drawn == set(outputs.FIGURES) - set(outputs.ZERO_SHOT_FIGURES)
    assert drawn == set(outputs.study_figures(zero_shot=False, few_shot=True))
