"""`ftscale fit` on a small CSV: the fit, the JSON, one-line errors with exit status 2, and the
installed console script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ftscale import cli
from ftscale.fitting import laws

TRUTH = {"A": 30.0, "alpha": 0.2, "beta": 0.3, "E": 0.4}


@pytest.fixture
def table(tmp_path) -> Path:
    x, df = (a.ravel() for a in np.meshgrid([1e5, 2e5, 4e5, 8e5], [64, 128, 256, 512, 1024], indexing="ij"))
    loss = laws.predict("multiplicative", TRUTH, df, x)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": x, "examples": df, "test_loss": loss, "name": "run"}).to_csv(path, index=False)
    return path


def fit(table, *args) -> list[str]:
    return ["fit", str(table), "--loss", "test_loss", *args]


def test_fit_writes_json_with_parameters_errors_and_counts(table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert (
        cli.main(
            fit(
                table,
                "--law",
                "multiplicative",
                "--x",
                "params",
                "--df",
                "examples",
                "--heldout",
                "params == 8e5",
                "--bootstrap",
                "20",
                "--json",
                str(out),
            )
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result["params"]) == {"A", "alpha", "beta", "E"}
    for key, value in TRUTH.items():
        assert result["params"][key] == pytest.approx(value, rel=1e-3)
    assert result["n_fit"] == 15 and result["n_heldout"] == 5
    assert result["delta_e"] < 1e-5 and result["delta_h"] < 1e-4
    assert set(result["intervals"]) == {"A", "alpha", "beta", "E"}
    low, high = result["intervals"]["alpha"]
    assert low <= result["params"]["alpha"] <= high
    printed = capsys.readouterr().out
    assert "multiplicative law" in printed and "Delta_h" in printed


def test_additive_and_log_huber(table, tmp_path):
    out = tmp_path / "fit.json"
    assert (
        cli.main(
            fit(
                table,
                "--law",
                "additive",
                "--x",
                "params",
                "--df",
                "examples",
                "--objective",
                "log-huber",
                "--delta",
                "0.01",
                "--json",
                str(out),
            )
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result["params"]) == {"A", "alpha", "B", "beta", "E"} and result["objective"] == "log-huber"
    assert result["delta_h"] is None and result["n_heldout"] == 0  # NaN is written as null


@pytest.mark.parametrize(
    "args, message",
    [
        (["--law", "multiplicative", "--x", "nope", "--df", "examples"], "column 'nope' is not in"),
        (["--law", "multiplicative", "--x", "params"], "--df is required"),
        (
            ["--law", "multiplicative", "--x", "params", "--df", "examples", "--heldout", "params > 0"],
            "every point is held out",
        ),
        (["--law", "multiplicative", "--x", "params", "--df", "examples", "--heldout", "params >"], "--heldout"),
        (["--law", "power", "--x", "name"], "not numeric"),
        (["--law", "power", "--x", "examples", "--heldout", "examples > 64 or params > 1e5"], "cannot determine"),
        (["--law", "power", "--x", "examples", "--delta", "0"], "--delta must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(table, capsys, args, message):
    assert cli.main(fit(table, *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.iloc[:0], "no rows"),
        (lambda t: t.assign(examples=t["examples"] - 64), "must be positive"),
        (lambda t: t.assign(test_loss=t["test_loss"].where(t.index != 3)), "finite"),
        (lambda t: t.assign(params=-t["params"]), "X"),
    ],
)
def test_bad_tables_exit_2_with_one_line(table, tmp_path, capsys, change, message):
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(table)).to_csv(bad, index=False)
    assert cli.main(fit(bad, "--law", "multiplicative", "--x", "params", "--df", "examples")) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_and_empty_files(tmp_path, capsys):
    assert cli.main(fit(tmp_path / "missing.csv", "--law", "power", "--x", "examples")) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")
    assert cli.main(fit(tmp_path / "empty.csv", "--law", "power", "--x", "examples")) == 2
    assert "empty" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
def test_every_registered_subcommand_is_reachable(name, capsys):
    """The parser is built from cli.SUBCOMMANDS: each name answers --help with its run's summary."""
    _, run = cli.SUBCOMMANDS[name]
    with pytest.raises(SystemExit) as exited:
        cli.main([name, "--help"])
    assert exited.value.code == 0
    summary = run.__doc__.strip().splitlines()[0]
    assert "".join(summary.split()) in "".join(capsys.readouterr().out.split())  # argparse re-wraps it


def _console_script() -> Path:
    """The entry point `make` installs with the package (the test installs nothing)."""
    script = Path(sys.executable).parent / "ftscale"
    assert script.exists(), f"{script} is missing: run `make test` (it installs the package) or `pip install -e .`"
    return script


def test_console_script(table):
    script = _console_script()
    result = subprocess.run(
        [str(script), "fit", str(table), "--law", "power", "--x", "examples", "--loss", "test_loss"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "power law" in result.stdout
    missing = subprocess.run(
        [str(script), "fit", "/nonexistent.csv", "--law", "power", "--x", "a", "--loss", "b"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


# ------------------------------------------------------------------ rows of several tasks, methods, axes

LAWS_BY_GROUP = {
    ("wmt", "fmt"): {"A": 30.0, "alpha": 0.2, "beta": 0.3, "E": 0.4},
    ("wmt", "lora"): {"A": 10.0, "alpha": 0.1, "beta": 0.2, "E": 0.6},
    ("sum", "fmt"): {"A": 50.0, "alpha": 0.3, "beta": 0.25, "E": 0.8},
    ("sum", "lora"): {"A": 20.0, "alpha": 0.15, "beta": 0.1, "E": 1.0},
}


@pytest.fixture
def study_table(tmp_path) -> Path:
    """A metrics_mean.csv-like table: two tasks, two methods, each its own multiplicative law on the
    model axis, plus PET-axis rows (prompt length 8) that no model-axis law fits."""
    x, df = (a.ravel() for a in np.meshgrid([1e5, 2e5, 4e5, 8e5], [64, 128, 256, 512, 1024], indexing="ij"))
    parts = []
    for (task, method), truth in LAWS_BY_GROUP.items():
        loss = laws.predict("multiplicative", truth, df, x)
        parts.append(
            pd.DataFrame(
                {
                    "task": task,
                    "method": method,
                    "params": x,
                    "examples": df,
                    "test_loss": loss,
                    "axis_model": True,
                    "axis_pet": x == 1e5,
                }
            )
        )
        parts.append(
            pd.DataFrame(
                {
                    "task": task,
                    "method": method,
                    "params": 1e5,
                    "examples": df[:5],
                    "test_loss": loss[:5] - 0.05,
                    "axis_model": False,
                    "axis_pet": True,
                }
            )
        )
    path = tmp_path / "metrics_mean.csv"
    pd.concat(parts).to_csv(path, index=False)
    return path


MULTIPLICATIVE = ["--law", "multiplicative", "--x", "params", "--df", "examples"]


def test_rows_of_several_tasks_methods_and_axes_are_refused_in_one_line(study_table, capsys):
    assert cli.main(fit(study_table, *MULTIPLICATIVE)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "2 tasks (sum, wmt)" in err and "2 methods (fmt, lora)" in err and "several axes" in err
    assert "--where" in err and "--group-by" in err
    # one task and method, still two axes
    assert cli.main(fit(study_table, *MULTIPLICATIVE, "--where", "task == 'wmt' and method == 'fmt'")) == 2
    err = capsys.readouterr().err
    assert "several axes" in err and "tasks" not in err


def test_pool_fits_mixed_rows_with_a_one_line_warning(study_table, tmp_path, capsys):
    out = tmp_path / "pooled.json"
    assert cli.main(fit(study_table, *MULTIPLICATIVE, "--pool", "--json", str(out))) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err and "2 tasks" in err
    assert json.loads(out.read_text())["n_fit"] == 4 * 25


def test_where_selects_one_law_and_recovers_it(study_table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert (
        cli.main(
            fit(
                study_table,
                *MULTIPLICATIVE,
                "--where",
                "task == 'sum' and method == 'lora' and axis_model",
                "--json",
                str(out),
            )
        )
        == 0
    )
    assert capsys.readouterr().err == ""
    result = json.loads(out.read_text())
    assert result["n_fit"] == 20
    for key, value in LAWS_BY_GROUP[("sum", "lora")].items():
        assert result["params"][key] == pytest.approx(value, rel=1e-3)


def test_group_by_fits_each_group(study_table, tmp_path, capsys):
    out = tmp_path / "fits.json"
    assert (
        cli.main(
            fit(
                study_table,
                *MULTIPLICATIVE,
                "--where",
                "axis_model",
                "--group-by",
                "task,method",
                "--heldout",
                "params == 8e5",
                "--json",
                str(out),
            )
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["group_by"] == ["task", "method"] and len(result["fits"]) == 4
    for one in result["fits"]:
        truth = LAWS_BY_GROUP[(one["group"]["task"], one["group"]["method"])]
        assert one["n_fit"] == 15 and one["n_heldout"] == 5
        for key, value in truth.items():
            assert one["params"][key] == pytest.approx(value, rel=1e-3)
    printed = capsys.readouterr().out
    assert printed.count("multiplicative law") == 4 and "task = sum, method = fmt:" in printed


def test_group_by_reports_a_group_it_cannot_fit(study_table, tmp_path, capsys):
    out = tmp_path / "fits.json"
    # grouped by task only, each group still mixes two methods: refused per group, so no group is fitted
    assert cli.main(fit(study_table, *MULTIPLICATIVE, "--where", "axis_model", "--group-by", "task")) == 2
    assert "no group could be fitted" in capsys.readouterr().err
    # one group too small: noted in its entry, the others fitted
    small = "axis_model and (task == 'wmt' or examples == 64)"
    assert (
        cli.main(fit(study_table, *MULTIPLICATIVE, "--where", small, "--group-by", "task,method", "--json", str(out)))
        == 0
    )
    fits = json.loads(out.read_text())["fits"]
    assert [("error" in f) for f in fits] == [True, True, False, False]  # sum/* has one Df left
    assert "not fitted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--where", "task =="], "--where 'task =='"),
        (["--where", "task == 'nope'"], "selects no row"),
        (["--group-by", "task,nope"], "column 'nope' is not in"),
    ],
)
def test_where_and_group_by_errors_exit_2_with_one_line(study_table, capsys, args, message):
    assert cli.main(fit(study_table, *MULTIPLICATIVE, *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
