"""Figures: the metric-against-factor fits of Figs 7-9, which panels they draw, readable log
ticks, and Fig 5's critical-size curves."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ftscale import outputs
from ftscale.figures import critical, generation, panels, paper
from tests.synthetic_study import synthetic_metrics

HELDOUT = {"model": ["m4"], "pretrain": [], "pet": [], "finetune_examples": []}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return synthetic_metrics(tasks=("translation_ende", "summarization"), seeds=2)


def test_log_linear_fit_recovers_the_line():
    x = np.array([1e5, 2e5, 4e5, 8e5])
    a, b = generation.log_linear_fit(x, 3.0 + 2.5 * np.log(x))
    assert (a, b) == (pytest.approx(3.0), pytest.approx(2.5))
    assert generation.log_linear_fit([1e5, 1e5], [1.0, 2.0]) is None  # one X: no line
    assert generation.log_linear_fit([1e5, 2e5], [1.0, np.nan]) is None


def test_metric_panels_are_the_task_metrics_and_methods_on_the_axis(runs):
    model = generation.metric_means(runs, "model", HELDOUT)
    assert generation.panel_rows(model) == [
        ("summarization", "rougeL"),
        ("translation_ende", "bleu"),
        ("translation_ende", "chrf"),
    ]
    assert set(model[model["heldout"]]["x"]) == {8e5}  # m4 held out
    pet = generation.metric_means(runs, "pet", HELDOUT)
    assert set(pet["method"]) == {"prompt", "lora"}  # FMT has no PET axis
    one_seed = runs[(runs.seed == 0) & (runs.task == "summarization") & (runs.method == "lora")]
    means = generation.metric_means(one_seed, "model", HELDOUT)
    assert len(means) == 4 * 5 and means["rougeL"].tolist() == pytest.approx(
        one_seed[one_seed.axis_model].sort_values(["params", "finetune_examples"])["rougeL"].tolist()
    )


def test_metric_figures_are_written(runs, tmp_path):
    generation.draw_metric_figures(runs, HELDOUT, tmp_path)
    names = {name for name, _ in generation.METRIC_FIGURES.values()}
    assert {p.stem for p in tmp_path.glob("*.png")} == names <= set(outputs.FIGURES)
    (tmp_path / "none").mkdir()
    generation.draw_metric_figures(runs.iloc[:0], HELDOUT, tmp_path / "none")  # no runs: a note, no error
    assert len(list((tmp_path / "none").glob("*.pdf"))) == 3


@pytest.mark.parametrize(
    "values, expected",
    [
        ([32, 64, 32], ["32", "64"]),  # under a decade: no minor labels
        ([51_000, 120_000, 260_000, 480_000], ["51K", "120K", "260K", "480K"]),
        ([8000] + list(range(10000, 100001, 10000)), ["8K", "20K", "30K", "50K", "70K", "100K"]),  # thinned
    ],
)
def test_factor_ticks_label_the_measured_values_without_overlap(values, expected):
    fig, ax = plt.subplots(figsize=(4.2, 3.3))  # one panel of panels.panels
    ax.plot(values, np.ones(len(values)), "o")
    panels.factor_ticks(ax, values)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert len(ax.xaxis.get_minorticklocs()) == 0
    boxes = [t.get_window_extent() for t in ax.get_xticklabels()]
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:]))  # no two labels overlap
    plt.close(fig)


def _fit(method: str, scale: float, alpha: float, beta: float) -> dict:
    """A multiplicative joint fit over X 1..1e6, measured at Df 1..100, E 0.5."""
    return {
        "task": "t",
        "axis": "model",
        "method": method,
        "law": "multiplicative",
        "x_values": [1.0, 1e6],
        "params": {"A": scale, "a": np.log(scale), "alpha": alpha, "beta": beta, "E": 0.5},
        "points": {"finetune_examples": [1.0, 10.0, 100.0]},
    }


def test_critical_panel_draws_the_crossing_as_a_function_of_x():
    """Fig 5: Df_c = (10/4)^5 X^-0.5 runs from 97.7 at X = 1 (inside both methods' Df) to 0.098 at
    X = 1e6 (beyond them): one solid and one dotted stretch, meeting at Df 1; laws that never cross
    draw nothing."""
    fmt, prompt = _fit("fmt", 10.0, 0.2, 0.5), _fit("prompt", 4.0, 0.1, 0.3)
    fig, ax = plt.subplots()
    assert critical.critical_panel(ax, fmt, prompt, pd.DataFrame())
    styles = {line.get_linestyle(): line for line in ax.lines}
    assert set(styles) == {"-", ":"}
    solid, dotted = (np.asarray(styles[k].get_ydata(), float) for k in ("-", ":"))
    assert np.nanmax(solid) == pytest.approx(2.5**5) and np.nanmin(solid) <= 1.0 <= np.nanmax(dotted)
    assert np.nanmin(dotted) == pytest.approx(2.5**5 * 1e6**-0.5)
    fig2, ax2 = plt.subplots()
    assert not critical.critical_panel(ax2, fmt, _fit("prompt", 40.0, 0.2, 0.5), pd.DataFrame())  # parallel
    assert not ax2.lines and not ax2.collections
    plt.close(fig)
    plt.close(fig2)


def test_few_shot_baselines_are_the_base_models_of_the_axis(runs, tmp_path):
    base = pd.DataFrame(
        {
            "task": ["translation_ende"] * 4 + ["summarization"],
            "model": ["m1", "m1", "m1", "m2", "m1"],
            "params": [1e5, 1e5, 1e5, 2e5, 1e5],
            "pretrain_tokens": [2.5e5, 5e5, 1e6, 1e6, 1e6],
            "few_shot_1_bleu": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    task = runs[runs.task == "translation_ende"]
    on_pretrain = paper.base_models_of(base, "translation_ende", task[task.axis_pretrain])
    assert on_pretrain["few_shot_1_bleu"].tolist() == [1.0, 2.0, 3.0]  # m1 at each budget
    on_model = paper.base_models_of(base, "translation_ende", task[task.axis_model & task.model.isin(["m1", "m2"])])
    assert on_model["few_shot_1_bleu"].tolist() == [3.0, 4.0]  # each size on the full corpus
    scored = runs.assign(few_shot_1_bleu=runs["bleu"])
    for axis, (name, _, _) in paper.FEW_SHOT_FIGURES.items():
        paper.few_shot_figure(scored, base, axis, tmp_path)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_few_shot_figure_needs_two_values_of_the_factor(runs):
    shared_only = runs[runs.axis_model & runs.axis_pretrain]  # m1 on the full corpus
    assert paper.tasks_with_a_curve([shared_only], "pretrain_tokens") == []
    assert paper.tasks_with_a_curve([shared_only, runs[runs.axis_pretrain]], "pretrain_tokens") == [
        "summarization",
        "translation_ende",
    ]


def test_critical_panel_marks_a_pair_resting_on_a_flagged_fit():
    """Fig 5: a pair whose fit is flagged draws a red halo under its curve (gid "flagged") and hollow
    markers; a clean pair draws none; the legend names the halo only when asked."""
    fmt, prompt = _fit("fmt", 10.0, 0.2, 0.5), _fit("prompt", 4.0, 0.1, 0.3)
    rows = pd.DataFrame(
        [{"task": "t", "axis": "model", "method_1": "fmt", "method_2": "prompt", "x": 1.0, "critical_df": 2.5**5}]
    )
    fig, (clean, marked) = plt.subplots(1, 2)
    assert critical.critical_panel(clean, fmt, prompt, rows)
    assert not [line for line in clean.lines if line.get_gid() == "flagged"]
    prompt["diagnostics"] = {"converged": True, "at_bound": [], "degenerate": ["|alpha| 43.85 > 5"], "flagged": True}
    assert critical.critical_panel(marked, fmt, prompt, rows)
    halo = [line for line in marked.lines if line.get_gid() == "flagged"]
    assert len(halo) == 1 and np.nanmax(halo[0].get_ydata()) == pytest.approx(2.5**5)
    markers = [line for line in marked.lines if line.get_marker() == "o"]
    assert markers and all(line.get_markerfacecolor() == "none" for line in markers)
    assert critical.FLAGGED_LABEL not in [h.get_label() for h in critical.legend([("fmt", "prompt")])]
    assert critical.FLAGGED_LABEL in [h.get_label() for h in critical.legend([("fmt", "prompt")], True)]
    plt.close(fig)


def test_few_shot_panel_draws_a_line_per_finetuning_data_size(runs):
    """Few-shot quality per Df (the old figure drew only each method's largest Df): one line per Df
    of the method's runs, each the mean over seeds at each X, and the base models dashed."""
    scored = runs.assign(few_shot_1_bleu=runs["bleu"])
    lora = scored[(scored.task == "translation_ende") & (scored.method == "lora") & scored.axis_model]
    baseline = pd.DataFrame({"params": [2e5, 1e5], "few_shot_1_bleu": [1.0, 0.5]})
    fig, ax = plt.subplots()
    assert paper.few_shot_panel(ax, lora, baseline, "params", "few_shot_1_bleu") == 5
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"Df=64", "Df=128", "Df=256", "Df=512", "Df=1.02K", "base model"}
    at_64 = lora[lora.finetune_examples == 64].groupby("params")["few_shot_1_bleu"].mean()
    assert list(lines["Df=64"].get_xdata()) == list(at_64.index)
    assert np.allclose(lines["Df=64"].get_ydata(), at_64.to_numpy())
    assert list(lines["base model"].get_xdata()) == [1e5, 2e5] and lines["base model"].get_linestyle() == "--"
    plt.close(fig)


def test_few_shot_figure_draws_summarization_rouge_l_beside_translation_bleu(runs, tmp_path):
    """Each task gets rows of the few-shot score its runs have: summarization's 1-shot ROUGE-L,
    translation's BLEU per k; a score none of a task's runs has draws no row for it."""
    translation = runs.task == "translation_ende"
    scored = runs.assign(
        few_shot_1_bleu=runs["bleu"].where(translation),
        few_shot_2_bleu=runs["bleu"].where(translation),
        few_shot_1_chrf=runs["chrf"].where(translation),  # drawn nowhere: BLEU stands for translation
        few_shot_1_rougeL=runs["rougeL"].where(~translation),
    )
    assert paper.few_shot_scores(scored.columns) == [(1, "bleu"), (1, "rougeL"), (2, "bleu")]
    rows = paper.few_shot_rows(paper.few_shot_runs(scored, "model"), "params")
    assert rows == [
        ("summarization", (1, "rougeL")),
        ("translation_ende", (1, "bleu")),
        ("translation_ende", (2, "bleu")),
    ]
    base = pd.DataFrame(
        {"task": ["summarization"] * 2, "model": ["m1", "m2"], "params": [1e5, 2e5], "pretrain_tokens": [1e6, 1e6]}
    ).assign(few_shot_1_rougeL=[3.0, 4.0])
    paper.few_shot_figure(scored, base, "model", tmp_path)
    assert (tmp_path / "fig11_few_shot.png").stat().st_size > 1000
    only_summarization = scored.drop(columns=["few_shot_1_bleu", "few_shot_2_bleu"])
    assert paper.few_shot_rows(paper.few_shot_runs(only_summarization, "model"), "params") == [
        ("summarization", (1, "rougeL"))
    ]
