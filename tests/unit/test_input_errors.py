"""Input errors point at the culprit, in one line, as a new user meets them: a malformed YAML file
(file:line:column), a `local` data file that is not there (every one, at start-up), an unknown key
(the nearest valid one)."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ftscale import cli, config
from ftscale.data.common import study_files

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# line 2 opens a list that line 3 never closes: PyYAML stops at line 3, column 4
MALFORMED = "study: tiny\nseeds: [1, 2\nfoo: 3\n"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_ftscale_grid_and_run_name_file_line_and_column_of_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MALFORMED)
    expected = f"{bad}:3:4: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence at line 2)"
    assert cli.main(["grid", str(bad)]) == 2
    assert one_error_line(capsys) == f"ftscale grid: {expected}"
    assert cli.main(["run", "-n", "--cores", "1", f"--configfile={bad}"]) == 2  # before Snakemake starts
    assert one_error_line(capsys) == f"ftscale run: {expected}"


def test_config_files_are_found_in_snakemakes_arguments():
    args = ["-n", "--configfile", "a.yaml", "b.yaml", "--cores", "1", "--configfiles=c.yaml", "all"]
    assert cli.config_files(args) == ["a.yaml", "b.yaml", "c.yaml"]


def test_a_malformed_default_config_stops_the_snakefile_with_file_line_and_column(tmp_path):
    """The Snakefile's own config.yaml (no --configfile), in a copy of the workflow."""
    for name in ("Snakefile", "rules", "report"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    (tmp_path / "config.yaml").write_text(MALFORMED)
    result = subprocess.run(
        [str(SNAKEMAKE), "-s", str(tmp_path / "Snakefile"), "-n", "--cores", "1", "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    errors = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "config" in line.lower() and "profile" not in line
    ]
    assert errors == [
        f"Config error: {tmp_path / 'config.yaml'}:3:4: not valid YAML: expected ',' or ']', "
        "but got ':' (while parsing a flow sequence at line 2)"
    ], result.stderr


@pytest.mark.parametrize(
    "section, wrong, hint",
    [
        ("finetune", "seed", "did you mean 'seeds'?"),
        ("pretrain", "warmup_step", "did you mean 'warmup_steps'?"),
        (None, "colour", "valid keys: analysis, cluster, "),
    ],
)
def test_an_unknown_key_is_named_with_the_nearest_valid_one(tiny_config, section, wrong, hint):
    (tiny_config[section] if section else tiny_config)[wrong] = 1
    with pytest.raises(config.ConfigError) as error:
        config.validate(tiny_config)
    key = f"{section}.{wrong}" if section else wrong
    assert str(error.value).startswith(f"{key}: unknown key ({hint}") and "\n" not in str(error.value)


def local_study(tiny_config: dict, files: Path) -> dict:
    """The tiny study on local files (two languages of pretraining text, two tasks, two zero-shot sets)."""
    spec = lambda name: {"path": str(files / name)}
    tiny_config["data"] = {
        **tiny_config["data"],
        "source": "local",
        "local": {
            "pretrain": {lang: spec(f"{lang}.txt") for lang in ("en", "de")},
            "tasks": {
                task: {split: spec(f"{task}_{split}.jsonl") for split in ("train", "dev", "test")}
                for task in ("translation_ende", "summarization")
            },
            "zero_shot": {"translation_ende": {lang: spec(f"zero_{lang}.jsonl") for lang in ("fr", "zh")}},
        },
    }
    return tiny_config


MISSING = ["de.txt", "summarization_test.jsonl", "zero_zh.jsonl"]


@pytest.fixture
def local_config(tiny_config, tmp_path) -> Path:
    files = tmp_path / "files"
    files.mkdir()
    study = local_study(tiny_config, files)
    for name in study_files(config.validate(copy.deepcopy(study))):
        if Path(name).name not in MISSING:
            Path(name).write_text("{}\n")
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_every_missing_local_file_is_named_in_one_line(local_config, capsys):
    expected = "data.local: 3 file(s) not found: " + ", ".join(str(local_config.parent / "files" / f) for f in MISSING)
    with pytest.raises(config.ConfigError) as error:
        config.load(local_config)
    assert str(error.value) == expected
    assert cli.main(["grid", str(local_config), "--json", str(local_config.parent / "grid.json")]) == 2
    assert one_error_line(capsys) == f"ftscale grid: {local_config}: {expected}"


def test_snakemake_stops_at_start_up_naming_every_missing_local_file(local_config):
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "-s",
            str(ROOT / "Snakefile"),
            "-n",
            "--cores",
            "1",
            "--directory",
            str(local_config.parent),
            "--configfile",
            str(local_config),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "not found" in line]
    assert lines == [
        "Config error: data.local: 3 file(s) not found: "
        + ", ".join(str(local_config.parent / "files" / f) for f in MISSING)
    ], output
    assert "Traceback" not in output and "Exception" not in output
