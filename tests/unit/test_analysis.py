"""Analysis and figures: every file written, the joint procedure on a metrics table, held-out
bookkeeping, diverged runs, tiny tables, options, determinism."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

from ftscale import outputs
from ftscale.analysis import comparison, points, procedure, tables
from ftscale.figures import critical, paper
from tests.synthetic_study import synthetic_metrics

FIGURE_FILES = {f"{name}.{ext}" for name in outputs.FIGURES for ext in ("png", "pdf")}
TABLE_FILES = {f"{name}.{ext}" for name in outputs.TABLES for ext in ("csv", "md")} | {"fits.json"}
PRETRAIN = pd.DataFrame(
    {
        "family": ["ende"] * 4,
        "model": ["m1", "m1", "m2", "m3"],
        "params": [1e5, 1e5, 2e5, 4e5],
        "pretrain_tokens": [5e5, 1e6, 1e6, 1e6],
        "train_loss": [3.1, 2.9, 2.6, 2.4],
        "val_loss": [3.0, 2.8, 2.5, 2.3],
    }
)
OPTIONS = {"heldout": {"model": ["m4"]}, "bootstrap": 40}
SMALL_GRID = {"log_scale": [0.0, 5.0], "exponent": [0.0, 1.0], "log_irreducible": [-2.0, 0.5]}  # quicker


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return synthetic_metrics(tasks=("translation_ende",), noise=1e-3)


@pytest.fixture(scope="module")
def analysed(metrics, tmp_path_factory):
    out = tmp_path_factory.mktemp("fits")
    return tables.run_analysis(metrics, PRETRAIN, OPTIONS, out), out


def test_run_analysis_writes_every_file(analysed):
    results, out = analysed
    assert {p.name for p in out.iterdir()} == TABLE_FILES
    assert set(results) == set(outputs.TABLES) and all(len(results[name]) for name in outputs.TABLES)
    fits = json.loads((out / "fits.json").read_text())  # strict JSON: NaN written as null
    assert {
        "options",
        "notes",
        "single_variable",
        "joint",
        "critical",
        "correlation",
        "which_method",
        "pretraining",
    } <= set(fits)
    params_md = (out / "params.md").read_text()
    assert "Table 4" in params_md and " [" in params_md  # "value [low, high]"
    assert pd.read_csv(out / "heldout_error.csv").shape == results["heldout_error"].shape


def test_joint_fits_recover_the_generating_laws(analysed):
    """synthetic_metrics: alpha 0.2 (model), 0.08 (pretraining), 0.002 (PET); beta 0.45/0.25/0.3."""
    params = analysed[0]["params"].set_index(["axis", "method"])
    for (axis, method), alpha in {("model", "fmt"): 0.2, ("pretrain", "prompt"): 0.08, ("pet", "lora"): 0.002}.items():
        assert params.loc[(axis, method), "alpha"] == pytest.approx(alpha, abs=0.01)
    for method, beta in {"fmt": 0.45, "prompt": 0.25, "lora": 0.3}.items():
        betas = params.xs(method, level="method")["beta"]
        assert np.ptp(betas) == 0 and betas.iloc[0] == pytest.approx(beta, abs=0.01)  # shared across axes
    row = params.loc[("model", "fmt")]
    assert row["alpha_low"] <= row["alpha"] <= row["alpha_high"] and row["n_bootstrap"] == 40
    assert set(params.loc[("pet", "prompt"), ["shared_from"]]) == {"model+pretrain"}


def test_heldout_points_only_measure_extrapolation(metrics, analysed, tmp_path):
    """Delta_h comes from the held-out model alone: shifting its losses moves Delta_h by the shift and
    leaves the fitted parameters and Delta_e untouched."""
    shifted = metrics.copy()
    on_m4 = shifted["model"] == "m4"
    shifted.loc[on_m4, "test_loss"] += 0.05
    result = tables.run_analysis(shifted, None, OPTIONS | {"bootstrap": 0}, tmp_path)
    before = analysed[0]["heldout_error"].set_index(["axis", "method"]).loc[("model", "fmt")]
    after = result["heldout_error"].set_index(["axis", "method"]).loc[("model", "fmt")]
    assert after["n_heldout"] == 5 and after["n_fit"] == 15  # m4's five Df values; means, not runs
    assert after["delta_e_multiplicative"] == pytest.approx(before["delta_e_multiplicative"], rel=1e-9)
    assert after["delta_h_multiplicative"] == pytest.approx(0.05, abs=3 * before["delta_h_multiplicative"])
    p_before = analysed[0]["params"].set_index(["axis", "method"]).loc[("model", "fmt"), ["A", "alpha", "beta", "E"]]
    p_after = result["params"].set_index(["axis", "method"]).loc[("model", "fmt"), ["A", "alpha", "beta", "E"]]
    np.testing.assert_allclose(p_after.to_numpy(float), p_before.to_numpy(float), rtol=1e-9)
    # held-out Df values leave every axis and the single-variable fits
    by_df = tables.run_analysis(metrics, None, {"heldout": {"finetune_examples": [1024]}, "bootstrap": 0}, tmp_path)
    assert set(by_df["single_variable"]["n_heldout"]) == {1} and set(by_df["heldout_error"]["n_heldout"]) == {
        4,
        3,
    }  # model axis: four sizes x one Df; pretraining and PET axes: three X values x one Df


def test_diverged_runs_are_excluded_with_a_warning_naming_them(metrics, tmp_path):
    broken = metrics.copy()
    index = broken.index[(broken.method == "fmt") & (broken.model == "m2") & (broken.finetune_examples == 256)][0]
    broken.loc[index, ["status", "test_loss"]] = ["diverged", np.nan]
    seed = broken.loc[index, "seed"]
    with pytest.warns(UserWarning, match=rf"translation_ende/m2/1000000/fmt-<NA>/df256/seed{seed}"):
        result = tables.run_analysis(broken, None, {"bootstrap": 0, "init_grid": SMALL_GRID}, tmp_path / "a")
    reference = tables.run_analysis(
        metrics.drop(index), None, {"bootstrap": 0, "init_grid": SMALL_GRID}, tmp_path / "b"
    )
    pd.testing.assert_frame_equal(result["params"], reference["params"])


def test_tiny_table_skips_axes_with_one_x_value(tmp_path, caplog):
    """Two model sizes x three Df, FMT and LoRA; the pretraining axis has one X value: skipped with a
    note, the rest still fitted, every file written."""
    table = synthetic_metrics(
        tasks=("t",),
        methods=("fmt", "lora"),
        model_sizes=(1e5, 4e5),
        pretrain_tokens=(1e6,),
        pet_sizes={"lora": (2,)},
        finetune_examples=(64, 256, 1024),
        seeds=1,
    )
    with caplog.at_level(logging.INFO, logger="ftscale.analysis.procedure"):
        result = tables.run_analysis(table, None, {"bootstrap": 5}, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == TABLE_FILES
    assert any("skipped t/fmt/pretrain" in m for m in caplog.messages)
    assert set(result["params"]["axis"]) == {"model"}
    assert "zero width" in " ".join(result.fits["notes"])  # one seed: nothing to resample
    paper.draw_figures(table, None, tmp_path, tmp_path / "figures")
    assert {p.name for p in (tmp_path / "figures").iterdir()} == FIGURE_FILES


def test_fmt_only_table_still_writes_every_file(tmp_path):
    table = synthetic_metrics(tasks=("t",), methods=("fmt",), seeds=2)
    result = tables.run_analysis(table, None, {"bootstrap": 3}, tmp_path)
    assert result["critical"].empty and result["which_method"].empty
    assert "No results" in (tmp_path / "critical.md").read_text()
    assert {p.name for p in tmp_path.iterdir()} == TABLE_FILES


def test_critical_and_which_method_tables(analysed):
    results = analysed[0]
    critical = results["critical"]
    assert set(zip(critical.method_1, critical.method_2)) == {("fmt", "prompt"), ("fmt", "lora"), ("prompt", "lora")}
    assert set(critical["axis"]) == {"model", "pretrain"}
    assert not critical["closed_form_exact"].any()  # fitted E differ between methods
    crossing = critical.dropna(subset=["critical_df"])
    assert len(crossing) and (crossing["critical_df"] > 0).all() and (crossing["where"] != "no crossing").all()
    assert critical.loc[critical.critical_df.isna(), "where"].eq("no crossing").all()  # nothing left blank
    which = results["which_method"]
    assert which["probability"].between(0, 1).all()
    losses = which[["loss_fmt", "loss_prompt", "loss_lora"]].to_numpy()
    assert (which["best_method"].to_numpy() == np.array(["fmt", "prompt", "lora"])[losses.argmin(axis=1)]).all()
    # the synthetic laws make prompt tuning best with little data and FMT best with the most
    model_axis = which[(which.axis == "model") & (which.x == 1e5)].set_index("finetune_examples")["best_method"]
    assert model_axis[64.0] == "prompt" and model_axis[1024.0] == "fmt"
    assert (which["observed_best"] == which["best_method"]).mean() > 0.8


def test_which_method_queries_and_correlations(metrics, tmp_path):
    queries = [
        {"task": "translation_ende", "axis": "model", "x": "m3", "finetune_examples": 64},
        {"task": "translation_ende", "axis": "pet", "x": 4, "finetune_examples": 64},
    ]  # PET: no pairs
    result = tables.run_analysis(
        metrics, None, {"bootstrap": 10, "which_method": queries, "init_grid": SMALL_GRID}, tmp_path
    )
    assert result["which_method"][["x", "best_method"]].values.tolist() == [[4e5, "prompt"]]
    assert any("LoRA rank" in n for n in result.fits["notes"])
    correlation = result["correlation"]
    assert set(correlation["metric"]) == {"bleu", "chrf"} and (correlation["r"] < -0.9).all()


def test_options_defaults_and_errors():
    assert set(procedure.resolve_options({})) == {
        "objective",
        "huber_delta",
        "init_grid",
        "heldout",
        "bootstrap",
        "seed",
        "which_method",
        "which_model",
        "diagnostics",
    }
    resolved = procedure.resolve_options({"heldout": {"model": ["m5"]}, "init_grid": {"exponent": [0.3]}})
    assert resolved["heldout"] == {
        "model": ["m5"],
        "pretrain": [],
        "pet": [],
        "pretraining": [],
        "finetune_examples": [],
    }
    assert resolved["init_grid"]["exponent"] == [0.3] and resolved["init_grid"]["log_scale"] == [0.0, 2.5, 5.0]
    for bad, message in (
        ({"objective": "l1"}, "objective"),
        ({"bootstrp": 3}, "bootstrp"),
        ({"heldout": {"models": []}}, "models"),
    ):
        with pytest.raises(ValueError, match=message):
            procedure.resolve_options(bad)


def test_run_analysis_is_deterministic(metrics, analysed, tmp_path):
    again = tables.run_analysis(metrics, PRETRAIN, OPTIONS, tmp_path)
    for name in outputs.TABLES:
        pd.testing.assert_frame_equal(again[name], analysed[0][name])
    assert (tmp_path / "fits.json").read_text() == (analysed[1] / "fits.json").read_text()


def test_draw_figures_writes_every_file(metrics, analysed, tmp_path):
    results, out = analysed
    written = paper.draw_figures(metrics, PRETRAIN, out, tmp_path / "from_dir")
    assert {p.name for p in (tmp_path / "from_dir").iterdir()} == FIGURE_FILES == {p.name for p in written}
    assert all(p.stat().st_size > 1000 for p in written)
    assert paper.load_fits(results) is results.fits  # run_analysis's value
    assert paper.load_fits(out / "fits.json") == paper.load_fits(out)


def test_critical_size_intervals_cover_the_generating_laws(analysed):
    """The bootstrap interval of each critical Df brackets its estimate, and on most rows of the
    model axis also the Df where the laws that generated the data cross (from their formulas)."""
    from scipy.optimize import brentq

    truth = {"fmt": (0.45, 0.55, 2.0, 1), "prompt": (0.25, 0.62, 1.0, 4), "lora": (0.3, 0.58, 1.2, 2)}

    def true_loss(method, x, df):  # synthetic_metrics' formula on the model axis
        beta, irreducible, scale, pet_size = truth[method]
        return 20.0 * scale * x**-0.2 * 1e6**-0.08 * pet_size**-0.002 * (df / 40) ** -beta + irreducible

    critical = analysed[0]["critical"]
    rows = critical[(critical.axis == "model") & critical.critical_df.between(1.0, 1e9)]
    assert len(rows) >= 3
    assert (rows.critical_df_low <= rows.critical_df).all() and (rows.critical_df <= rows.critical_df_high).all()
    covered = []
    for row in rows.itertuples():
        gap = lambda log_df, row=row: (
            true_loss(row.method_1, row.x, np.exp(log_df)) - true_loss(row.method_2, row.x, np.exp(log_df))
        )
        true_df = np.exp(brentq(gap, np.log(1.0), np.log(1e9)))
        covered.append(row.critical_df_low <= true_df <= row.critical_df_high)
        assert abs(np.log(row.critical_df / true_df)) < np.log(1.5), (row.method_1, row.method_2, row.x)
    assert np.mean(covered) >= 0.7, covered


def test_largest_df_is_held_out_per_task_and_method(metrics, tmp_path):
    """heldout finetune_examples "largest": each task and method's own largest Df leaves every fit; Delta_h
    of the "df" rows is the extrapolation error there (a shift of those losses alone moves it by the
    shift), reported beside the held-out model's "x" rows."""
    other_task = metrics[metrics.finetune_examples < 1024].assign(task="summarization")  # its largest Df: 512
    table = pd.concat([metrics, other_task], ignore_index=True)
    held = points.heldout_df(table, "largest")
    assert set(table.loc[held, "finetune_examples"]) == {1024, 512}
    assert (table.loc[held & (table.task == "summarization"), "finetune_examples"] == 512).all()
    options = {"heldout": {"model": ["m4"], "finetune_examples": "largest"}, "bootstrap": 0, "init_grid": SMALL_GRID}
    result = tables.run_analysis(table, None, options, tmp_path)
    errors = result["heldout_error"].set_index(["task", "axis", "method", "heldout"])
    x_row, df_row = (
        errors.loc[("translation_ende", "model", "fmt", "x")],
        errors.loc[("translation_ende", "model", "fmt", "df")],
    )
    assert (x_row["n_heldout"], df_row["n_heldout"], df_row["n_fit"]) == (5, 4, 12)  # m4 x 5 Df; 4 models x 1024
    assert errors.loc[("translation_ende", "pretrain", "lora", "df"), "n_heldout"] == 3
    assert ("translation_ende", "pretrain", "lora", "x") not in errors.index  # nothing held out by X there
    assert df_row["delta_h_multiplicative"] < 0.01  # the laws extrapolate
    shifted = table.copy()
    shifted.loc[points.heldout_df(shifted, "largest") & (shifted.task == "translation_ende"), "test_loss"] += 0.05
    moved = (
        tables.run_analysis(shifted, None, options, tmp_path)["heldout_error"]
        .set_index(["task", "axis", "method", "heldout"])
        .loc[("translation_ende", "model", "fmt", "df")]
    )
    assert moved["delta_h_multiplicative"] == pytest.approx(0.05, abs=2 * df_row["delta_h_multiplicative"])
    assert moved["delta_e_multiplicative"] == pytest.approx(df_row["delta_e_multiplicative"], rel=1e-9)
    params = result["params"].set_index(["task", "axis", "method"]).loc[("translation_ende", "model", "fmt")]
    assert params["alpha"] == pytest.approx(0.2, abs=0.01) and params["beta"] == pytest.approx(0.45, abs=0.01)
    single = result["single_variable"]
    assert set(single["n_heldout"]) == {1} and set(single["n_fit"]) == {4, 3}  # 5 or 4 Df, one held out
    assert "held-out df" in (tmp_path / "heldout_error.md").read_text()
    with pytest.raises(ValueError, match="finetune_examples"):
        procedure.resolve_options({"heldout": {"finetune_examples": "smallest"}})


@pytest.mark.parametrize(
    "sizes_1, sizes_2, where, beyond",
    [
        ([64, 256, 1024], [64, 256, 1024], "inside both", (1.0, 1.0)),  # 10 Df^-0.5 = 4 Df^-0.3 at Df = 97.7
        ([128, 256, 1024], [16, 32, 256], "inside prompt only", (128 / 2.5**5, 1.0)),
        ([16, 32, 64], [8, 16, 32], "extrapolated", (2.5**5 / 64, 2.5**5 / 32)),
    ],
)
def test_critical_sizes_are_numbers_with_where_they_lie(sizes_1, sizes_2, where, beyond):
    joint = [_joint_fit("fmt", 10.0, 0.5, sizes_1), _joint_fit("prompt", 4.0, 0.3, sizes_2)]
    row = comparison.critical_sizes(joint)[0]
    assert row["critical_df"] == pytest.approx(2.5**5, rel=1e-9) and row["where"] == where
    assert (row["beyond_1"], row["beyond_2"]) == pytest.approx(beyond, rel=1e-9)
    assert row["closed_form_df"] == pytest.approx(2.5**5, rel=1e-9) and row["n_crossings"] == 1
    shown = tables.markdown("critical", pd.DataFrame([row]))
    assert "97.7" in shown and "nan" not in shown and where in shown
    never = comparison.critical_sizes([_joint_fit("fmt", 10.0, 0.5, sizes_1), _joint_fit("prompt", 40.0, 0.5, sizes_2)])
    assert never[0]["where"] == "no crossing" and never[0]["n_crossings"] == 0  # parallel: FMT below at every Df
    assert "| none " in tables.markdown("critical", pd.DataFrame(never))


def test_critical_sizes_between_disjoint_df_grids(tmp_path):
    """En-Zh's grids: FMT measured from 1M examples, prompt tuning up to 100K. The laws cross at 300K,
    between them: reported as a number with the factor beyond each method's data, its bootstrap
    interval unclipped, and drawn in Fig 5 (the old code showed "below range (< 1e+06)" and no number)."""
    fmt_sizes, prompt_sizes = [1e6, 2e6, 5e6, 1e7, 2.5e7], [8e3, 2e4, 5e4, 1e5]
    prompt_scale = 10.0 / 3e5**0.2  # 10 Df^-0.5 = A Df^-0.3 at Df = 3e5 (equal E)
    fmt, prompt = _joint_fit("fmt", 10.0, 0.5, fmt_sizes), _joint_fit("prompt", prompt_scale, 0.3, prompt_sizes)
    spread = np.array([0.7, 0.9, 1.0, 1.1, 1.4])  # bootstrap replicates of prompt tuning's A
    fmt["bootstrap"] = {k: [v] * 5 for k, v in fmt["params"].items()}
    prompt["bootstrap"] = {k: [v] * 5 for k, v in prompt["params"].items()} | {
        "A": list(prompt_scale * spread),
        "a": list(np.log(prompt_scale * spread)),
    }
    row = comparison.critical_sizes([fmt, prompt])[0]
    assert row["critical_df"] == pytest.approx(3e5, rel=1e-9) and row["where"] == "extrapolated"
    assert (row["beyond_1"], row["beyond_2"]) == pytest.approx((1e6 / 3e5, 3e5 / 1e5), rel=1e-9)
    replicate_crossings = (10.0 / (prompt_scale * spread)) ** (1 / 0.2)  # the closed form, per replicate
    low, high = np.percentile(replicate_crossings, [2.5, 97.5])
    assert (row["critical_df_low"], row["critical_df_high"]) == pytest.approx((low, high), rel=1e-9)
    assert low < 1e5 < 1e6 < high  # reaches into both grids: not clipped to either
    shown = tables.markdown("critical", pd.DataFrame([row]))
    assert "3e+05" in shown and "extrapolated; 3.33x below fmt's Df; 3x above prompt's Df" in shown
    fits = {"joint": [fmt, prompt], "critical": [row], "options": {}}
    critical.critical_figure(fits, tmp_path)
    assert (tmp_path / "fig05_critical_size.png").stat().st_size > 1000


def _joint_fit(method: str, a: float, beta: float, sizes: list[float]) -> dict:
    """A multiplicative joint-fit record as analyze() makes it, with alpha 0.2 and E 0.5."""
    return {
        "task": "t",
        "axis": "model",
        "method": method,
        "law": "multiplicative",
        "params": {"A": a, "a": np.log(a), "alpha": 0.2, "beta": beta, "E": 0.5},
        "x_values": [1e5],
        "points": {
            "x": [1e5] * len(sizes),
            "finetune_examples": sizes,
            "loss": [1.0] * len(sizes),
            "heldout": [False] * len(sizes),
        },
    }


def test_a_condition_held_out_on_any_axis_is_held_out_of_every_fit(tmp_path):
    """Holding out the full corpus on the pretraining axis holds out the condition it shares with the
    model and PET axes (m1 on the full corpus, default PET size): shifting only the held-out runs'
    losses leaves every joint fit (both laws, every axis, the shared beta/E, the bootstrap) unchanged,
    and the shared condition counts as held out ("shared") on the model axis."""
    table = synthetic_metrics(tasks=("t",), seeds=2)
    options = {"heldout": {"model": ["m4"], "pretrain": [1_000_000]}, "bootstrap": 5, "init_grid": SMALL_GRID}
    default_size = table.method.map({"fmt": 0, "prompt": 4, "lora": 2})  # synthetic_metrics' defaults
    full_corpus_base = (
        (table.model == "m1") & (table.pretrain_tokens == 1_000_000) & (table.pet_size.fillna(0) == default_size)
    )
    shifted = table.copy()
    shifted.loc[(table.model == "m4") | full_corpus_base, "test_loss"] += 0.05
    before = tables.run_analysis(table, None, options, tmp_path / "before")
    after = tables.run_analysis(shifted, None, options, tmp_path / "after")
    for fit_before, fit_after in zip(before.fits["joint"], after.fits["joint"], strict=True):
        assert (fit_before["axis"], fit_before["law"]) == (fit_after["axis"], fit_after["law"])
        assert fit_after["params"] == pytest.approx(fit_before["params"], rel=1e-9), (
            fit_before["axis"],
            fit_before["method"],
        )
        assert fit_after.get("bootstrap") == fit_before.get("bootstrap")
    pd.testing.assert_frame_equal(after["critical"], before["critical"])
    errors = after["heldout_error"].set_index(["axis", "method", "heldout"])
    assert errors.loc[("model", "fmt", "shared"), "n_heldout"] == 5  # m1's five Df values
    assert errors.loc[("model", "fmt", "shared"), "delta_h_multiplicative"] == pytest.approx(0.05, abs=0.01)
    assert errors.loc[("pretrain", "fmt", "x"), "n_heldout"] == 5
    assert errors.loc[("pet", "lora", "shared"), "n_heldout"] == 5  # rank 2 on the full corpus


def test_the_pretraining_law_holds_out_analysis_heldout_pretraining(tmp_path):
    """Fig 10's law L(N) = A/N^alpha + E is fitted without the held-out models (configs/paper.yaml:
    16B, as the paper's Fig 10): shifting their loss changes no parameter, and delta_h measures it."""
    params = np.array([1e5, 2e5, 4e5, 8e5])
    truth = 30.0 * params**-0.3 + 1.5
    runs = synthetic_metrics(tasks=("translation_ende",), methods=("fmt",), seeds=1)

    def fit(val_loss, held):
        pretrain = pd.DataFrame(
            {
                "family": "ende",
                "model": ["m1", "m2", "m3", "m4"],
                "params": params,
                "pretrain_tokens": 1e6,
                "val_loss": val_loss,
                "status": "ok",
            }
        )
        options = {"heldout": {"pretraining": held}, "bootstrap": 0, "init_grid": SMALL_GRID}
        return procedure.analyze(runs, options, pretrain)["pretraining"][0]

    shifted = truth + np.array([0, 0, 0, 0.5])
    held, held_shifted = fit(truth, ["m4"]), fit(shifted, ["m4"])
    assert held["heldout"] == [False, False, False, True]
    assert {k: held_shifted["fit"][k] for k in ("A", "alpha", "E")} == {k: held["fit"][k] for k in ("A", "alpha", "E")}
    assert held_shifted["fit"]["delta_h"] == pytest.approx(0.5, abs=1e-3)
    assert fit(shifted, [])["fit"]["alpha"] != pytest.approx(held["fit"]["alpha"], rel=1e-3)  # not held out: it moves
    from ftscale import config as study_config
    from tests.synthetic_study import PAPER_CONFIG

    assert study_config.load(PAPER_CONFIG)["analysis"]["heldout"]["pretraining"] == ["16B"]


def test_critical_sizes_resting_on_a_flagged_fit_are_marked(tmp_path, monkeypatch):
    """Prompt tuning ran one seed per condition, so its bootstrap intervals have zero width and its
    joint fits are flagged degenerate: every crossing with prompt tuning says so in critical.csv and
    .md (flagged, with the reason), FMT vs LoRA stays clean, and Fig 5 draws the flagged pairs over
    the red halo with the legend entry and the reason in the panel."""
    runs = synthetic_metrics(tasks=("t",), seeds=2)
    runs = runs[(runs.method != "prompt") | (runs.seed == 0)]
    options = {"heldout": {"model": ["m4"]}, "bootstrap": 5, "init_grid": SMALL_GRID}
    result = tables.run_analysis(runs, None, options, tmp_path)
    table = pd.read_csv(tmp_path / "critical.csv")
    with_prompt = (table.method_1 == "prompt") | (table.method_2 == "prompt")
    assert with_prompt.any() and (~with_prompt).any()
    assert table.loc[with_prompt, "flagged"].all() and not table.loc[~with_prompt, "flagged"].any()
    assert table.loc[with_prompt, "diagnostics"].str.startswith("prompt: degenerate: alpha interval").all()
    assert table.loc[~with_prompt, "diagnostics"].isna().all()  # "" in the CSV
    assert "flagged" in (tmp_path / "critical.md").read_text()
    drawn = []
    monkeypatch.setattr(critical, "save_figure", lambda fig, out_dir, name: drawn.append(fig))
    critical.critical_figure(result.fits, tmp_path)
    halos = {ax.get_title(): [line for line in ax.lines if line.get_gid() == "flagged"] for ax in drawn[0].axes}
    assert set(halos) == {"t / model", "t / pretrain"} and all(halos.values())
    for ax in drawn[0].axes:
        assert critical.FLAGGED_LABEL in [text.get_text() for text in ax.get_legend().get_texts()]
        assert any(text.get_text().startswith("FLAGGED: prompt: degenerate") for text in ax.texts)
        colours = {
            line.get_color() for line in ax.lines if line.get_gid() != "flagged" and line.get_linestyle() != "None"
        }
        assert critical.PAIR_STYLE[("fmt", "lora")] in colours  # the clean pair is still drawn, with no halo
    assert len(halos["t / model"]) == 2  # fmt vs prompt and prompt vs lora: one crossing each
