"""`ftscale analyze`: the workflow's analysis (the fit and figures rules' functions) on a runs table
the test builds, its one-line errors (exit 2), and the figures it skips with why."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ftscale import cli, outputs
from ftscale.analysis import tables
from ftscale.figures import paper
from ftscale.runtime import integrity
from tests.synthetic_study import synthetic_metrics

OPTIONS = {
    "heldout": {"model": ["m4"]},
    "bootstrap": 4,
    "init_grid": {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]},
}
PRETRAIN = pd.DataFrame(
    {
        "family": ["ende"] * 4,
        "model": ["m1", "m1", "m2", "m3"],
        "params": [1e5, 1e5, 2e5, 4e5],
        "pretrain_tokens": [5e5, 1e6, 1e6, 1e6],
        "train_loss": [3.1, 2.9, 2.6, 2.4],
        "val_loss": [3.0, 2.8, 2.5, 2.3],
        "steps": 10,
        "train_seconds": 1.0,
        "status": "ok",
    }
)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A runs table (every column of metrics.csv, as the workflow writes it), its pretraining table
    and a config with the analysis options."""
    folder = tmp_path_factory.mktemp("study")
    runs = synthetic_metrics(tasks=("translation_ende",), methods=("fmt", "lora"), seeds=2)
    runs = runs.assign(zero_shot_bleu=runs["bleu"] / 2, few_shot_1_bleu=runs["bleu"] / 3)
    runs.to_csv(folder / "metrics.csv", index=False)
    PRETRAIN.to_csv(folder / "pretrain.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump({"analysis": OPTIONS}, sort_keys=False))
    return folder


def analyze(folder: Path, runs: Path, *extra: str) -> int:
    return cli.main(["analyze", str(runs), "--config", str(folder / "config.yaml"), *extra])


def test_analyze_writes_what_the_workflow_writes(study, tmp_path, capsys):
    out = tmp_path / "out"
    assert analyze(study, study / "metrics.csv", "--pretrain", str(study / "pretrain.csv"), "--out", str(out)) == 0
    assert "skipped" not in capsys.readouterr().out  # every column present: every figure drawn
    # the calls the fit and figures rules made before they shared a function with the command
    metrics, pretrain = pd.read_csv(study / "metrics.csv"), pd.read_csv(study / "pretrain.csv")
    tables.run_analysis(metrics, pretrain, OPTIONS, tmp_path / "fits")
    paper.draw_figures(metrics, pretrain, tmp_path / "fits", tmp_path / "figures")
    written = sorted(p.name for p in (tmp_path / "fits").iterdir())
    assert written == sorted(p.name for p in (out / "fits").iterdir()) and "fits.json" in written
    for name in written:
        assert (out / "fits" / name).read_bytes() == (tmp_path / "fits" / name).read_bytes(), name
    assert {p.name for p in (out / "figures").iterdir()} == {
        f"{n}.{e}" for n in outputs.FIGURES for e in ("png", "pdf")
    }
    for name in outputs.FIGURES:  # PNGs pixel for pixel (a PDF carries its creation time)
        assert (out / "figures" / f"{name}.png").read_bytes() == (tmp_path / "figures" / f"{name}.png").read_bytes()


def test_a_figure_whose_columns_are_absent_is_skipped_saying_why(study, tmp_path, capsys):
    runs = pd.read_csv(study / "metrics.csv")
    minimal = runs[["task", "method", "model", "params", "finetune_examples", "test_loss", "axis_model"]]
    minimal.to_csv(tmp_path / "minimal.csv", index=False)
    assert analyze(study, tmp_path / "minimal.csv", "--out", str(tmp_path / "out")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "skipped fig07_metric_model_size: the runs table has no column bleu or chrf or rougeL or bleurt" in lines
    assert "skipped fig03_pretrain_data: the runs table has no column axis_pretrain" in lines
    assert "skipped fig10_pretraining: no pretraining table (pretrain.csv's columns) given" in lines
    drawn = {p.stem for p in (tmp_path / "out" / "figures").glob("*.png")}
    assert drawn == {"fig01_single_variable", "fig02_model_size", "fig05_critical_size", "which_base_model"}
    params = pd.read_csv(tmp_path / "out" / "fits" / "params.csv")
    assert set(params["axis"]) == {"model"} and set(params["method"]) == {"fmt", "lora"}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns=["finetune_examples"]), "column 'finetune_examples' is missing"),
        (
            lambda t: t.drop(columns=["axis_model", "axis_pretrain", "axis_pet"]),
            "no axis column: add one of axis_model",
        ),
        (
            lambda t: t.assign(params=t["params"].astype(object).where(t.index != 4, "big")),
            "row 6: params is 'big', not a positive number",
        ),
        (
            lambda t: t.assign(finetune_examples=t["finetune_examples"].where(t.index != 7, -64)),
            "row 9: finetune_examples is -64, not a positive number",
        ),
        (
            lambda t: t.assign(test_loss=t["test_loss"].astype(object).where(t.index != 0, "low")),
            "row 2: test_loss is 'low', not a number",
        ),
        (
            lambda t: t.assign(axis_model=t["axis_model"].astype(object).where(t.index != 1, "maybe")),
            "row 3: axis_model is 'maybe', not true or false",
        ),
        (
            lambda t: t.assign(pretrain_tokens=t["pretrain_tokens"].where(~t["axis_pretrain"])),
            "pretrain_tokens is empty, not a positive number on the axis_pretrain rows",
        ),
    ],
)
def test_a_bad_table_is_one_line_naming_the_column_or_row(study, tmp_path, capsys, change, message):
    change(pd.read_csv(study / "metrics.csv")).to_csv(tmp_path / "bad.csv", index=False)
    assert analyze(study, tmp_path / "bad.csv", "--out", str(tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and error.startswith(f"ftscale analyze: {tmp_path}")
    assert not (tmp_path / "out").exists()  # nothing written


def test_a_bad_config_or_pretraining_table_is_one_line(study, tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("analysis:\n  bootstrapp: 3\n")
    assert (
        cli.main(
            [
                "analyze",
                str(study / "metrics.csv"),
                "--config",
                str(tmp_path / "bad.yaml"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "bootstrapp" in capsys.readouterr().err
    PRETRAIN.drop(columns=["val_loss"]).to_csv(tmp_path / "pretrain.csv", index=False)
    assert (
        analyze(
            study, study / "metrics.csv", "--pretrain", str(tmp_path / "pretrain.csv"), "--out", str(tmp_path / "out")
        )
        == 2
    )
    assert "column 'val_loss' is missing" in capsys.readouterr().err and not (tmp_path / "out").exists()


def _killed_at_analyze(study: Path, out: Path) -> subprocess.CompletedProcess:
    """`ftscale analyze` in its own process (group), killed (SIGKILL) at the fault point `analyze`:
    its fits written, its figures not."""
    env = dict(os.environ, FTSCALE_FAULT="analyze")
    env.pop("FTSCALE_RUN_PGID", None)
    command = [sys.executable, "-m", "ftscale.cli", "analyze", str(study / "metrics.csv")]
    command += ["--config", str(study / "config.yaml"), "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, env=env, start_new_session=True)


def test_analyze_seals_its_directory_and_a_kill_leaves_none_looking_complete(study, tmp_path, capsys):
    """DIR is sealed (MANIFEST.json, ftscale.runtime.integrity) once fits and figures are written; a
    run killed between them leaves no DIR, or the earlier complete analysis untouched (the old code
    wrote into DIR directly, unsealed: a killed run left DIR/fits complete beside no figures)."""
    out = tmp_path / "out"
    killed = _killed_at_analyze(study, out)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()  # nothing there looks like a result
    partial = out.with_name("out.partial")
    assert (partial / "fits" / "fits.json").is_file() and not (partial / integrity.MANIFEST).exists()
    assert analyze(study, study / "metrics.csv", "--out", str(out)) == 0
    assert "(sealed)" in capsys.readouterr().out
    integrity.verify(out)
    manifest = (out / integrity.MANIFEST).read_text()
    sealed = json.loads(manifest)["files"]
    assert {"fits/fits.json", "fits/critical.csv", "figures/fig05_critical_size.png"} <= set(sealed)
    assert not partial.exists()
    assert _killed_at_analyze(study, out).returncode == -signal.SIGKILL
    integrity.verify(out)  # the earlier analysis, whole
    assert (out / integrity.MANIFEST).read_text() == manifest
    (out / "notes.txt").write_text("mine")  # not an analysis: refused, nothing replaced
    assert analyze(study, study / "metrics.csv", "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds other files than an analysis" in error
    assert (out / "notes.txt").read_text() == "mine" and (out / integrity.MANIFEST).read_text() == manifest
