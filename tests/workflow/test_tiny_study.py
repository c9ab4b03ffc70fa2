"""The tiny study end to end through Snakemake: outputs, determinism, staleness."""

import copy
import json
import math

import pandas as pd
import pytest

from ftscale import config as study_config
from ftscale.figures.paper import FIGURES
from ftscale.plan import grid
from tests.workflow.conftest import ROOT, TINY, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow
TINY_CONFIG = study_config.load(TINY)  # as the workflow reads it: the schema's defaults filled in
RESULTS = "results/tiny"


def test_dry_run_counts_match_the_grid(tmp_path):
    conditions = grid.expand_conditions(TINY_CONFIG)
    runs = len(conditions) * TINY_CONFIG["finetune"]["seeds"]
    counts = planned_jobs(tmp_path)
    assert counts["finetune"] == counts["evaluate"] == runs
    jobs = grid.pretrain_jobs(TINY_CONFIG, conditions)
    assert (counts["pretrain"], counts["pretrain_ende_checkpoints"]) == (len(jobs) - 1, 1)
    assert sum(len(job.base_checkpoints()) for job in jobs.values()) == len(grid.pretrain_runs(TINY_CONFIG, conditions))
    assert counts["tokenize_task"] == len(TINY_CONFIG["tasks"])
    assert counts["aggregate"] == counts["fit"] == counts["figures"] == 1


def test_outputs_exist_and_are_sane(tiny_run):
    metrics = pd.read_csv(tiny_run / RESULTS / "metrics.csv")
    conditions = grid.expand_conditions(TINY_CONFIG)
    assert len(metrics) == len(conditions) * TINY_CONFIG["finetune"]["seeds"]
    required = [
        "task",
        "family",
        "model",
        "params",
        "pretrain_tokens",
        "method",
        "pet_size",
        "finetune_examples",
        "seed",
        "dev_loss",
        "test_loss",
        "bleu",
        "chrf",
        "rougeL",
        "steps",
        "train_seconds",
        "status",
    ]
    assert set(required) <= set(metrics.columns)
    assert (metrics.status == "ok").all()
    ceiling = math.log(TINY_CONFIG["data"]["tokenizer_vocab_size"])
    assert metrics.test_loss.between(0, ceiling).all()  # better than a uniform guess
    translation = metrics.task == "translation_ende"
    assert metrics.loc[translation, ["bleu", "chrf"]].notna().all().all()
    assert metrics.loc[translation, "rougeL"].isna().all()
    assert metrics.loc[~translation, "rougeL"].notna().all()
    assert metrics.loc[~translation, ["bleu", "chrf"]].isna().all().all()
    assert metrics.loc[metrics.method == "fmt", "pet_size"].isna().all()
    mean = pd.read_csv(tiny_run / RESULTS / "metrics_mean.csv")
    assert len(mean) == len(conditions) and (mean.runs == TINY_CONFIG["finetune"]["seeds"]).all()
    pretrain = pd.read_csv(tiny_run / RESULTS / "pretrain.csv")
    assert pretrain.val_loss.lt(ceiling).all()
    # pretrain.data_axis: checkpoints. The smaller budget is the full run's checkpoint after 16384 tokens
    # (32 steps of 512), with the run's weights there; the pretraining axis finetunes from it.
    assert sorted(zip(pretrain.model, pretrain.pretrain_tokens, pretrain.steps)) == [
        ("m1", 16384, 32),
        ("m1", 32768, 64),
        ("m2", 32768, 64),
    ]
    checkpoint = json.loads((tiny_run / RESULTS / "pretrain/ende/m1-16384tok/pretrain.json").read_text())
    assert (checkpoint["checkpoint_of"], checkpoint["tokens_seen"]) == (32768, 16384)
    data_axis = metrics[metrics.axis_pretrain]
    assert sorted(set(data_axis.pretrain_tokens)) == [16384, 32768]
    assert len(data_axis) == sum("pretrain" in c.axes for c in conditions.values()) * TINY_CONFIG["finetune"]["seeds"]
    # Zero- and few-shot scores exactly on the translation runs of the model-size axis, 1-shot
    # ROUGE-L exactly on its summarization runs (evaluate.transfer), in both tables.
    transfer = translation & metrics.axis_model
    scores = ["zero_shot_bleu", "zero_shot_chrf", "few_shot_1_bleu", "few_shot_2_chrf"]
    assert metrics.loc[transfer, scores].notna().all().all() and metrics.loc[~transfer, scores].isna().all().all()
    assert metrics.loc[transfer, scores].apply(lambda column: column.between(0, 100)).all().all()
    one_shot = ~translation & metrics.axis_model
    assert one_shot.sum() == 24 and "few_shot_2_rougeL" not in metrics  # summarization_shots: [1]
    assert metrics.loc[one_shot, "few_shot_1_rougeL"].between(0, 100).all()
    assert metrics.loc[~one_shot, "few_shot_1_rougeL"].isna().all()
    assert mean.loc[mean.task == "summarization", "few_shot_1_rougeL"].notna().all()
    run = next(c for c in conditions.values() if c.task == "summarization")
    one_shot_json = json.loads((tiny_run / RESULTS / "finetune" / run.id / "seed0" / "transfer.json").read_text())
    assert set(one_shot_json["few_shot_1"]["rougeL_by_lang"]) <= set(TINY_CONFIG["tasks"]["summarization"]["languages"])
    base = pd.read_csv(tiny_run / RESULTS / "base_transfer.csv")
    assert sorted(base.model) == sorted(2 * list(TINY_CONFIG["models"]))  # each model, for each task
    assert base.loc[base.task == "translation_ende", "few_shot_2_bleu"].notna().all()
    assert base.loc[base.task == "summarization", "few_shot_1_rougeL"].notna().all()
    for path in [
        "fits/fits.json",
        "fits/params.md",
        "fits/heldout_error.csv",
        "figures/fig06_zero_shot.png",
        "figures/fig11_few_shot.pdf",
        "figures/fig01_single_variable.png",
        "figures/fig10_pretraining.pdf",
        "fits/which_model.md",
        "figures/which_base_model.png",
    ]:
        assert (tiny_run / RESULTS / path).stat().st_size > 0, path
    # analysis.heldout.finetune_examples "largest": each joint fit of translation extrapolates to Df 64
    errors = pd.read_csv(tiny_run / RESULTS / "fits/heldout_error.csv")
    held_df = errors[errors.heldout == "df"]
    assert set(held_df.task) == {"translation_ende"} and set(held_df.axis) == {"model", "pretrain", "pet"}
    assert (held_df.n_heldout > 0).all() and held_df.delta_h_multiplicative.notna().all()
    # Checkpoints load as they are: transformers for the base, peft for the adapters.
    from ftscale.train.finetune import load_finetuned

    lora = next(c for c in conditions.values() if c.method == "lora")
    base = tiny_run / RESULTS / "pretrain" / lora.pretrain_id
    model = load_finetuned(base, tiny_run / RESULTS / "finetune" / lora.id / "seed0" / "checkpoint", "lora")
    assert type(model).__name__.startswith("Peft")


# Outputs of runs of every kind, redone from scratch for the determinism check: each task and
# method, a PET size and a held-out Df, a pretraining checkpoint's run, seed 1, zero- and few-shot
# transfer, a base model's transfer. Their pretraining and data are redone with them; the other
# runs are the same jobs again (a tenth to a quarter of the tiny study's time, measured loaded).
FROM_SCRATCH = [
    "finetune/translation_ende/m2-32768tok/lora-2/df32/seed0/eval.json",
    "finetune/translation_ende/m2-32768tok/lora-2/df32/seed0/transfer.json",
    "finetune/translation_ende/m1-16384tok/fmt/df16/seed1/eval.json",
    "finetune/translation_ende/m1-32768tok/prompt-8/df64/seed0/eval.json",
    "finetune/summarization/m1-32768tok/fmt/df32/seed0/eval.json",
    "finetune/summarization/m2-32768tok/prompt-4/df64/seed1/eval.json",
    "finetune/summarization/m2-32768tok/lora-2/df32/seed0/eval.json",
    "finetune/summarization/m2-32768tok/lora-2/df32/seed0/transfer.json",
    "base_transfer/translation_ende/m2-32768tok.json",
]
TIMING = ("train_seconds", "first_step_at")  # of train.json: the only keys a rerun may change


def run_outputs(results) -> dict[str, dict]:
    """The FROM_SCRATCH outputs and their runs' train.json, less the timing."""
    paths = {results / target for target in FROM_SCRATCH}
    paths |= {(results / target).with_name("train.json") for target in FROM_SCRATCH if target.startswith("finetune/")}
    return {
        str(path.relative_to(results)): {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING}
        for path in paths
    }


def test_rerun_from_scratch_gives_identical_results(tiny_run, tmp_path):
    snakemake(tmp_path, "--cores", "2", *(f"{RESULTS}/{target}" for target in FROM_SCRATCH))
    first, second = run_outputs(tiny_run / RESULTS), run_outputs(tmp_path / RESULTS)
    assert len(first) == len(FROM_SCRATCH) + 6 and first == second  # 6 runs' train.json


def test_nothing_to_do_after_a_full_run(tiny_run):
    assert planned_jobs(tiny_run) == {}


def test_changing_a_fit_option_reruns_only_the_analysis(tiny_copy, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["analysis"]["huber_delta"] = 0.01
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == {"fit": 1, "figures": 1}


def test_adding_a_finetuning_size_adds_only_its_runs(tiny_copy, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["tasks"]["translation_ende"]["finetune_examples"]["lora"].append(48)
    new_conditions = set(grid.expand_conditions(config)) - set(grid.expand_conditions(TINY_CONFIG))
    runs = len(new_conditions) * config["finetune"]["seeds"]
    transfers = sum(
        grid.has_transfer(config, c) for cid, c in grid.expand_conditions(config).items() if cid in new_conditions
    )
    assert runs > 0 and transfers > 0
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == {
        "finetune": runs,
        "evaluate": runs,
        "transfer": transfers * config["finetune"]["seeds"],
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }


def test_adding_a_budget_reruns_the_run_it_is_a_checkpoint_of_and_its_dependents(tiny_copy, tmp_path):
    # With data_axis checkpoints a new budget is a new output of the base model's full run: that run
    # reruns whole (Snakemake reruns a job with a missing output) and so does every job that reads
    # any of its checkpoints. Nothing of the other model sizes reruns.
    config = copy.deepcopy(TINY_CONFIG)
    config["pretrain"]["budgets"]["ende"] = [16384, 24576, 32768]
    conditions = grid.expand_conditions(config)
    job = grid.pretrain_jobs(config, conditions)["ende/m1-32768tok"]
    assert job.checkpoints == (16384, 24576)
    affected = [c for c in conditions.values() if c.pretrain_id in job.base_checkpoints()]
    seeds = config["finetune"]["seeds"]
    base_transfer = [run for run in grid.base_transfer_runs(config, conditions) if run[1] == "m1"]
    assert 0 < len(affected) < len(conditions) and base_transfer
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == {
        "pretrain_ende_checkpoints": 1,
        "finetune": len(affected) * seeds,
        "evaluate": len(affected) * seeds,
        "transfer": sum(grid.has_transfer(config, c) for c in affected) * seeds,
        "base_transfer": len(base_transfer),
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }


def test_separate_data_axis_trains_each_budget_on_its_own(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["pretrain"]["data_axis"] = "separate"
    counts = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", config))
    assert counts["pretrain"] == 3 and "pretrain_ende_checkpoints" not in counts  # m1 x 2 budgets, m2
    assert counts["finetune"] == len(grid.expand_conditions(config)) * config["finetune"]["seeds"]


def test_changing_one_learning_rate_reruns_only_that_method(tiny_copy, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["finetune"]["methods"]["prompt"]["learning_rate"] = 0.1
    prompt = [c for c in grid.expand_conditions(config).values() if c.method == "prompt"]
    seeds = config["finetune"]["seeds"]
    transfers = sum(grid.has_transfer(config, c) for c in prompt) * seeds
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == {
        "finetune": len(prompt) * seeds,
        "evaluate": len(prompt) * seeds,
        "transfer": transfers,
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }


def test_changing_few_shot_settings_reruns_only_transfer_and_analysis(tiny_copy, tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["evaluate"]["transfer"]["few_shot_examples"] = 6
    transfers = sum(grid.has_transfer(config, c) for c in grid.expand_conditions(config).values())
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == {
        "transfer": transfers * config["finetune"]["seeds"],
        "base_transfer": len(grid.base_transfer_runs(config, grid.expand_conditions(config))),
        "aggregate": 1,
        "fit": 1,
        "figures": 1,
    }


def test_bad_config_stops_with_one_line(tmp_path):
    config = copy.deepcopy(TINY_CONFIG)
    config["models"]["m1"]["layers"] = -1
    result = snakemake(tmp_path, "--dry-run", config=write_config(tmp_path / "bad.yaml", config), check=False)
    assert result.returncode != 0
    assert "Config error: models.m1.layers: -1 is less than the minimum of 1" in result.stderr + result.stdout


def test_report_has_every_figure_with_its_caption(tiny_copy):
    report = tiny_copy / "report.html"
    made = snakemake(tiny_copy, "--report", str(report))
    assert "(ERROR/" not in made.stderr and "(WARNING/" not in made.stderr, made.stderr  # captions are valid RST
    html = report.read_text(errors="replace")
    figures = sorted(path.name for path in (tiny_copy / RESULTS / "figures").glob("*.png"))
    assert len(figures) == len(FIGURES) and all(name in html for name in figures), figures
    captions = sorted(p for p in (ROOT / "report").glob("*.rst") if p.stem != "workflow")  # workflow.rst: the report's
    assert [c.stem for c in captions] == [f[:-4] for f in figures]  # a caption file per figure
    assert all(c.read_text().split(".")[0] in html for c in captions)  # each caption's first sentence
