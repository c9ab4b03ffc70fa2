"""`ftscale fit` on a small CSV: the fit, the JSON, and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ftscale import cli, fitting


@pytest.fixture
def table(tmp_path) -> Path:
    x, df = (a.ravel() for a in np.meshgrid([1e5, 2e5, 4e5, 8e5], [64, 128, 256, 512, 1024], indexing="ij"))
    loss = fitting.predict("multiplicative", {"A": 30.0, "alpha": 0.2, "beta": 0.3, "E": 0.4}, df, x)
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": x, "examples": df, "test_loss": loss}).to_csv(path, index=False)
    return path


def test_fit_writes_json_with_parameters_and_errors(table, tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert cli.main(["fit", str(table), "--law", "multiplicative", "--x", "params", "--df", "examples",
                     "--loss", "test_loss", "--heldout", "params == 8e5", "--bootstrap", "5", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["params"]["alpha"] == pytest.approx(0.2, abs=1e-3)
    assert result["n_fit"] == 15 and result["n_heldout"] == 5
    assert result["delta_h"] < 1e-3 and set(result["intervals"]) == {"A", "alpha", "beta", "E"}
    assert "Delta_h" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--x", "nope", "--df", "examples"], "column 'nope' is not in"),
    (["--x", "params"], "--df is required"),
    (["--x", "params", "--df", "examples", "--heldout", "params > 0"], "every point is held out"),
])
def test_bad_input_exits_2_with_one_line(table, capsys, args, message):
    assert cli.main(["fit", str(table), "--law", "multiplicative", "--loss", "test_loss", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_console_script(table):
    script = Path(sys.executable).parent / "ftscale"
    result = subprocess.run([str(script), "fit", str(table), "--law", "power", "--x", "examples", "--loss",
                             "test_loss"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "power law" in result.stdout
    missing = subprocess.run([str(script), "fit", "/nonexistent.csv", "--law", "power", "--x", "a", "--loss", "b"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
