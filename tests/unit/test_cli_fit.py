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
    assert cli.main(fit(table, "--law", "multiplicative", "--x", "params", "--df", "examples",
                        "--heldout", "params == 8e5", "--bootstrap", "20", "--json", str(out))) == 0
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
    assert cli.main(fit(table, "--law", "additive", "--x", "params", "--df", "examples", "--objective", "log-huber",
                        "--delta", "0.01", "--json", str(out))) == 0
    result = json.loads(out.read_text())
    assert set(result["params"]) == {"A", "alpha", "B", "beta", "E"} and result["objective"] == "log-huber"
    assert result["delta_h"] is None and result["n_heldout"] == 0          # NaN is written as null


@pytest.mark.parametrize("args, message", [
    (["--law", "multiplicative", "--x", "nope", "--df", "examples"], "column 'nope' is not in"),
    (["--law", "multiplicative", "--x", "params"], "--df is required"),
    (["--law", "multiplicative", "--x", "params", "--df", "examples", "--heldout", "params > 0"],
     "every point is held out"),
    (["--law", "multiplicative", "--x", "params", "--df", "examples", "--heldout", "params >"], "--heldout"),
    (["--law", "power", "--x", "name"], "not numeric"),
    (["--law", "power", "--x", "examples", "--heldout", "examples > 64 or params > 1e5"], "cannot determine"),
    (["--law", "power", "--x", "examples", "--delta", "0"], "--delta must be positive"),
])
def test_bad_arguments_exit_2_with_one_line(table, capsys, args, message):
    assert cli.main(fit(table, *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("change, message", [
    (lambda t: t.iloc[:0], "no rows"),
    (lambda t: t.assign(examples=t["examples"] - 64), "must be positive"),
    (lambda t: t.assign(test_loss=t["test_loss"].where(t.index != 3)), "finite"),
    (lambda t: t.assign(params=-t["params"]), "X"),
])
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
    assert "".join(summary.split()) in "".join(capsys.readouterr().out.split())      # argparse re-wraps it


def _console_script() -> Path:
    """The entry point `make` installs with the package (the test installs nothing)."""
    script = Path(sys.executable).parent / "ftscale"
    assert script.exists(), f"{script} is missing: run `make test` (it installs the package) or `pip install -e .`"
    return script


def test_console_script(table):
    script = _console_script()
    result = subprocess.run([str(script), "fit", str(table), "--law", "power", "--x", "examples", "--loss",
                             "test_loss"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "power law" in result.stdout
    missing = subprocess.run([str(script), "fit", "/nonexistent.csv", "--law", "power", "--x", "a", "--loss", "b"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
