"""Ranking candidates by predicted loss at a target size: accept-then-stop's phase detection, the
laws, auto's choice, bootstrap p_best, skipped candidates, and `ftscale select` on a table it builds."""

import json

import numpy as np
import pandas as pd
import pytest

from ftscale import cli
from ftscale.fitting import laws, rectified, selection

SIZES = np.array([100.0 * 2**k for k in range(9)])  # 100 ... 25,600
TARGET = 409_600.0


def rectified_curve(B, D_l, beta, E, sizes=SIZES):
    return rectified.predict({"B": B, "D_l": D_l, "beta": beta, "E": E}, sizes)


def test_ats_leaves_out_the_pre_power_phase():
    # a plateau at the four smallest sizes, then an exact line in log-log space
    line = np.exp(2.0 - 0.3 * np.log(SIZES))
    loss = np.where(SIZES < 1600, line[4], line)
    slope, intercept = selection.ats_line(SIZES, loss)
    assert slope == pytest.approx(-0.3) and intercept == pytest.approx(2.0)
    assert selection.predict_at("ats", SIZES, loss, TARGET) == pytest.approx(np.exp(2.0 - 0.3 * np.log(TARGET)))


def test_ats_on_a_noisy_line_recovers_its_slope():
    rng = np.random.default_rng(0)
    loss = np.exp(1.0 - 0.2 * np.log(SIZES) + rng.normal(0, 1e-3, len(SIZES)))
    assert selection.ats_line(SIZES, loss)[0] == pytest.approx(-0.2, abs=0.01)


@pytest.mark.parametrize("law", ["power", "rectified"])
def test_laws_extrapolate_their_own_curves(law):
    if law == "power":
        loss = laws.predict("power", {"A": 5.0, "beta": 0.4, "E": 0.6}, SIZES)
        truth = laws.predict("power", {"A": 5.0, "beta": 0.4, "E": 0.6}, TARGET)
    else:
        loss, truth = rectified_curve(300, 200, 0.6, 0.7), rectified_curve(300, 200, 0.6, 0.7, TARGET)
    assert selection.predict_at(law, SIZES, loss, TARGET) == pytest.approx(truth, rel=1e-3)


def test_auto_picks_by_heldout_error():
    line = np.exp(1.5 - 0.25 * np.log(SIZES))  # an exact log-log line: ats has no error at all
    assert selection.choose_law(SIZES, line)[0] == "ats"
    bent = rectified_curve(5000, 3000, 1.0, 0.3)  # pre-power phase, then a power law with an E
    law, errors = selection.choose_law(SIZES, bent)
    assert law == "rectified" and errors["rectified"] < min(errors["ats"], errors["power"])
    # a lead smaller than AUTO_TIE of the held-out loss is a tie, which the simpler law wins
    nearly = rectified_curve(2000, 3000, 0.9, 0.5)
    law, errors = selection.choose_law(SIZES, nearly)
    assert errors["rectified"] < errors["ats"] < selection.AUTO_TIE * nearly[-1] and law == "ats"


def test_auto_skips_only_the_fits_that_cannot_change_its_choice():
    """every_error=False (which_model's) stops at the first validated law whose held-out error is
    within the tie of zero: the same law as with every error, fewer fits."""
    rng = np.random.default_rng(3)
    line = np.exp(1.5 - 0.25 * np.log(SIZES))
    curves = {
        "line": line,
        "noisy line": line * np.exp(rng.normal(0, 0.03, len(SIZES))),
        "bent": rectified_curve(5000, 3000, 1.0, 0.3),
        "nearly": rectified_curve(2000, 3000, 0.9, 0.5),
        "two sizes": line[-3:],
    }
    for name, loss in curves.items():
        sizes = SIZES[-len(loss) :]
        full_law, full_errors = selection.choose_law(sizes, loss)
        law, errors = selection.choose_law(sizes, loss, every_error=False)
        assert law == full_law, name
        assert all(errors[k] == full_errors[k] or np.isnan(errors[k]) and np.isnan(full_errors[k]) for k in errors)
    assert list(selection.choose_law(SIZES, line, every_error=False)[1]) == ["ats"]  # power, rectified not fitted
    assert list(selection.choose_law(SIZES, curves["bent"], every_error=False)[1]) == list(selection.AUTO_ORDER)


def candidates():
    rng = np.random.default_rng(1)
    curves = {"small": (400, 100, 0.5, 1.2), "medium": (300, 100, 0.5, 0.9), "large": (250, 100, 0.5, 0.6)}
    out = [
        selection.Candidate(name, SIZES, rectified_curve(*p) + rng.normal(0, 1e-3, len(SIZES)), extra={"p": p})
        for name, p in curves.items()
    ]
    return out + [selection.Candidate("tiny", SIZES[:1], rectified_curve(*curves["small"], SIZES[:1]))]


@pytest.mark.parametrize("law", ["ats", "power", "auto"])
def test_select_ranks_skips_and_counts_wins(law):
    result = selection.select(candidates(), budget=6400, target=TARGET, law=law, bootstrap=10, seed=0)
    assert [row["model"] for row in result["ranking"]] == ["large", "medium", "small"]
    assert [row["model"] for row in result["skipped"]] == ["tiny"]
    assert "1 distinct finetuning-data sizes" in result["skipped"][0]["reason"]
    assert sum(row["p_best"] for row in result["ranking"]) == pytest.approx(1.0)
    best = result["ranking"][0]
    assert best["p_best"] >= 0.5 and best["low"] < best["high"]
    assert all(row["n_points"] == 7 for row in result["ranking"])  # 100 ... 6,400
    assert result["ranking"][0]["p"] == (250, 100, 0.5, 0.6)  # extra columns carried


def test_budget_below_every_size_skips_all_and_bad_options_raise():
    result = selection.select(candidates(), budget=50, target=TARGET)
    assert result["ranking"] == [] and len(result["skipped"]) == 4
    with pytest.raises(laws.FitError, match="unknown law"):
        selection.select(candidates(), budget=6400, target=TARGET, law="cubic")
    with pytest.raises(laws.FitError, match="positive"):
        selection.select(candidates(), budget=6400, target=-1)


@pytest.fixture
def table(tmp_path):
    rows = [
        {"base": c.model, "method": m, "examples": d, "loss": l + (0.05 if m == "lora" else 0.0)}
        for c in candidates()
        for m in ("fmt", "lora")
        for d, l in zip(c.finetune_examples, c.loss)
    ]
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def select_args(table, *args):
    return ["select", str(table), "--model", "base", "--df", "examples", "--loss", "loss", *args]


def test_cli_select_writes_the_ranking(table, tmp_path, capsys):
    out = tmp_path / "which.json"
    assert (
        cli.main(
            select_args(
                table,
                "--method",
                "method",
                "--budget",
                "6400",
                "--target",
                str(TARGET),
                "--law",
                "ats",
                "--bootstrap",
                "5",
                "--json",
                str(out),
            )
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert {k: result[k] for k in ("law", "budget", "target")} == {"law": "ats", "budget": 6400, "target": TARGET}
    assert [(r["model"], r["method"]) for r in result["ranking"]][:2] == [("large", "fmt"), ("large", "lora")]
    assert set(result["ranking"][0]) >= {"model", "method", "predicted_loss", "low", "high", "p_best"}
    assert {(r["model"], r["method"]) for r in result["skipped"]} == {("tiny", "fmt"), ("tiny", "lora")}
    printed = capsys.readouterr().out
    assert "large" in printed and "skipped: tiny / fmt" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "6400", "--target", "1e5", "--model", "nope"], "column 'nope' is not in"),
        (["--budget", "0", "--target", "1e5"], "--budget must be positive"),
        (["--budget", "6400", "--target", "1e5", "--loss", "base"], "not numeric"),
        (["--budget", "6400", "--target", "1e5", "--bootstrap", "-1"], "--bootstrap must be >= 0"),
    ],
)
def test_cli_select_bad_input_exits_2_with_one_line(table, capsys, args, message):
    assert cli.main(select_args(table, *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_select_unknown_law_is_a_usage_error(table, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(select_args(table, "--budget", "6400", "--target", "1e5", "--law", "cubic"))
    assert exit.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_select_negative_size(table, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.read_csv(table).assign(examples=lambda t: t["examples"] - 200).to_csv(bad, index=False)
    assert cli.main(select_args(bad, "--budget", "6400", "--target", "1e5")) == 2
    assert "row 2: examples must be >= 0" in capsys.readouterr().err


def test_which_model_ranks_sizes_at_the_largest_df_and_never_crashes():
    sizes = [64.0, 160.0, 400.0, 1024.0]
    rows = [
        {"model": f"m{i}", "x": 1e5 * 2**i, "finetune_examples": d, "test_loss": 2.0 / (i + 1) + 50 / d}
        for i in range(3)
        for d in sizes
    ]
    rows.append({"model": "late", "x": 1e6, "finetune_examples": 1024.0, "test_loss": 0.4})  # only at the target
    notes = []
    out = selection.which_model(
        {("t", "fmt"): pd.DataFrame(rows), ("t", "lora"): pd.DataFrame(rows[:1])}, bootstrap=4, notes=notes
    )
    ranked = [r for r in out if "reason" not in r]
    assert [r["model"] for r in ranked] == ["m2", "m1", "m0"] and [r["rank"] for r in ranked] == [1, 2, 3]
    assert [r["observed_rank"] for r in ranked] == [1, 2, 3]
    assert all(r["budget"] == 400 and r["target"] == 1024 and r["n_points"] == 3 for r in ranked)
    assert ranked[0]["observed_loss"] == pytest.approx(2.0 / 3 + 50 / 1024)
    skipped = [r for r in out if "reason" in r]
    assert [(r["model"], r["params"], r["observed_loss"]) for r in skipped] == [("late", 1e6, 0.4)]
    assert notes == ["which_model t/lora: one finetuning-data size, nothing to extrapolate"]


# ------------------------------------------------------------------ requests `select` cannot answer


def test_each_ranking_states_how_far_it_extrapolates():
    result = selection.select(candidates(), budget=6400, target=TARGET, law="ats")
    assert all(row["extrapolation"] == TARGET / 6400 for row in result["ranking"])
    assert result["extrapolation"] == TARGET / 6400 and selection.refusal(result) is None


def test_a_target_below_the_budget_is_refused(table, capsys):
    with pytest.raises(laws.FitError, match="below the budget"):
        selection.select(candidates(), budget=6400, target=3200)
    assert cli.main(select_args(table, "--budget", "6400", "--target", "3200")) == 2
    err = capsys.readouterr().err
    assert "the target 3200 is below the budget 6400" in err and err.count("\n") == 1


def test_a_target_far_beyond_the_data_is_refused_unless_allowed(table, capsys):
    target = 1220 * 25_600  # the largest size of the table is 25,600
    assert cli.main(select_args(table, "--budget", "25600", "--target", str(target), "--law", "ats")) == 2
    err = capsys.readouterr().err
    assert "1,220x beyond the largest finetuning-data size used" in err and "--max-extrapolation" in err
    assert err.count("\n") == 1
    assert (
        cli.main(
            select_args(
                table, "--budget", "25600", "--target", str(target), "--law", "ats", "--max-extrapolation", "2000"
            )
        )
        == 0
    )
    assert "1.22e+03x beyond the largest size used" in capsys.readouterr().out
    assert cli.main(select_args(table, "--budget", "6400", "--target", "1e5", "--max-extrapolation", "0.5")) == 2
    assert "--max-extrapolation must be at least 1" in capsys.readouterr().err


def test_a_budget_that_skips_every_candidate_is_refused(table, capsys):
    assert cli.main(select_args(table, "--budget", "150", "--target", "1e4")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no candidate can be ranked from runs up to the budget 150: 4 skipped" in err


def test_without_bootstrap_no_interval_is_printed(table, capsys):
    assert cli.main(select_args(table, "--budget", "6400", "--target", str(TARGET), "--law", "ats")) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed and "95% low" not in printed and "no intervals (--bootstrap)" in printed
    assert "64x" in printed.replace(" ", "")  # each row's extrapolation factor
    assert (
        cli.main(select_args(table, "--budget", "6400", "--target", str(TARGET), "--law", "ats", "--bootstrap", "5"))
        == 0
    )
    assert "95% low" in capsys.readouterr().out


def test_the_default_law_is_the_best_validated_one(table, capsys):
    """Accept-then-stop: on Lin et al.'s curves it equals or beats every other law (bench_select.py)."""
    assert selection.DEFAULT_LAW == "ats"
    assert cli.main(select_args(table, "--budget", "6400", "--target", str(TARGET))) == 0
    assert "law ats" in capsys.readouterr().out
    assert selection.select(candidates(), budget=6400, target=TARGET)["law"] == "ats"
