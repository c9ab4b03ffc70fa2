"""The analysis' scientific choices as config keys with one home each (the schema): the Huber delta
(analysis.huber_delta, the fitting library's default read from it), the which-model law and auto's
tie (analysis.which_model), and the fit and figures rules' params, which leave a later key out at
its default so that no finished study's analysis goes stale."""

import ast
from pathlib import Path

import numpy as np
import pytest

from ftscale import config as study_config
from ftscale.fitting import selection, solver
from tests.synthetic_study import synthetic_metrics

SRC = Path(__file__).resolve().parents[2] / "src" / "ftscale"
TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def test_the_huber_delta_has_one_home():
    """No function in src/ftscale spells out a Huber delta: every `delta` default is the solver's
    HUBER_DELTA, which is the schema's analysis.huber_delta (before: 1e-3 written in three modules)."""
    spelled = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                defaults += node.args.kw_defaults
                for argument, default in zip(arguments, defaults):
                    if argument.arg == "delta" and default is not None and "HUBER_DELTA" not in ast.unparse(default):
                        spelled.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert spelled == []
    assert solver.HUBER_DELTA == study_config.schema_default("analysis", "huber_delta") == 1e-3


def test_which_model_law_and_tie_are_schema_keys():
    assert set(
        study_config._schema()["properties"]["analysis"]["properties"]["which_model"]["properties"]["law"]["enum"]
    ) == set(selection.LAWS)
    assert (selection.DEFAULT_LAW, selection.AUTO_TIE) == ("ats", 0.02)
    resolved = study_config.section_with_defaults("analysis", {})
    assert resolved["which_model"] == {"law": "ats", "auto_tie": 0.02}
    with pytest.raises(study_config.ConfigError, match="which_model"):
        study_config.section_with_defaults("analysis", {"which_model": {"law": "best"}})


def test_auto_tie_reaches_the_choice():
    """A curve where the rectified law wins the hold-out by more than 2% of the loss: auto picks it at
    the default tie, and ats (the simplest) when the tie is wider than every lead."""
    sizes = np.array([0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0])
    bent = 5000 / (3000 + np.maximum(sizes, 1e-9) ** 1.0) + 0.3
    law, errors = selection.choose_law(sizes, bent)
    assert law == "rectified"
    assert selection.choose_law(sizes, bent, auto_tie=10 * max(errors.values()) / bent[-1])[0] == "ats"


def test_the_which_model_table_uses_the_configured_law():
    from ftscale.analysis import procedure

    runs = synthetic_metrics(tasks=("t",), methods=("fmt",), seeds=1)
    grid = {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]}
    options = {"heldout": {"model": ["m4"]}, "bootstrap": 0, "init_grid": grid}
    default = procedure.analyze(runs, options)["which_model"]
    assert default and {row["law"] for row in default} == {"ats"}
    power = procedure.analyze(runs, options | {"which_model": {"law": "power"}})["which_model"]
    assert {row["law"] for row in power} == {"power"}


def test_the_analysis_rules_params_leave_later_keys_out_at_their_defaults():
    """The fit and figures rules' params are what they were before which_model was a key (the
    section less it), so a finished study stays up to date; a changed law is in them (it reruns)."""
    config = study_config.load(TINY)
    params = study_config.analysis_params(config["analysis"])
    assert "which_model" in config["analysis"] and "which_model" not in params
    assert params == {k: v for k, v in config["analysis"].items() if k != "which_model"}
    config["analysis"]["which_model"]["law"] = "auto"
    assert study_config.analysis_params(config["analysis"])["which_model"] == {"law": "auto", "auto_tie": 0.02}
