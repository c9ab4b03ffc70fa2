"""BLEURT in the workflow (rules/fetch.smk's fetch_scorer, rules/evaluate.smk): listed in
evaluate.metrics, its checkpoint is one fetch job that every translation evaluation waits for;
offline and not cached, that job stops the run with one line giving the download command."""

import re

from tests.workflow.conftest import snakemake, write_config


def bleurt_config(tiny_config, tmp_path, checkpoint=None):
    tiny_config["evaluate"]["metrics"] = ["bleu", "chrf", "rougeL", "bleurt"]
    if checkpoint:
        tiny_config["evaluate"]["bleurt"] = {"checkpoint": checkpoint}
    return write_config(tmp_path / "bleurt.yaml", tiny_config)


def test_bleurt_is_fetched_once_for_the_translation_evaluations(tiny_config, tmp_path):
    config = bleurt_config(tiny_config, tmp_path)
    dag = snakemake(tmp_path / "run", "--dry-run", "--cores", "1", config=config).stdout
    assert re.search(r"^fetch_scorer\s+1\s*$", dag, re.M)
    evaluations = re.findall(r"rule evaluate:\n\s+input: ([^\n]*)", dag)
    translation = [inputs for inputs in evaluations if "/translation_ende/" in inputs]
    assert len(evaluations) == 90 and len(translation) == 66  # tests/configs/tiny.yaml's grid
    assert all("results/tiny/scorers/bleurt" in inputs for inputs in translation)
    assert not any("scorers" in inputs for inputs in evaluations if inputs not in translation)


def test_offline_and_not_cached_the_run_stops_in_one_line(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    config = bleurt_config(tiny_config, tmp_path)
    result = snakemake(tmp_path / "run", "--cores", "1", "results/tiny/scorers/bleurt", config=config, check=False)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("fetch bleurt:")]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    assert "lucadiliello/BLEURT-20@main is not in the Hugging Face cache" in lines[0]
    assert "`hf download lucadiliello/BLEURT-20 --revision main`" in lines[0]
    assert not (tmp_path / "run" / "results" / "tiny" / "scorers" / "bleurt").exists()
