"""Staleness keyed to meaning: a finished study dry-run with its config rewritten (same meaning)
schedules nothing; a meaningful edit schedules exactly the jobs the grid says it touches, also
without Snakemake's metadata. Edits already covered in test_tiny_study.py (a fit option, one
method's learning rate, a Df size with metadata, few-shot settings) are not repeated here."""

import copy
import os
import shutil

import pytest

from ftscale.plan import grid
from ftscale.plan import summary as grid_summary
from tests.config_rewrites import rewrite
from tests.workflow.conftest import planned_jobs, snakemake, write_config
from tests.workflow.test_data_sources import local_config
from tests.workflow.test_tiny_study import TINY_CONFIG

pytestmark = pytest.mark.workflow
ANALYSIS = {"aggregate": 1, "fit": 1, "figures": 1}
REWRITES = range(10)  # seed 0: yaml.safe_dump, seed 1: JSON, the rest random YAML spellings


def test_rewritten_configs_schedule_nothing(tiny_run, tmp_path):
    for seed in REWRITES:
        suffix, text = rewrite(TINY_CONFIG, seed)
        path = tmp_path / f"rewrite{seed}{suffix}"
        path.write_text(text)
        assert planned_jobs(tiny_run, path) == {}, f"rewrite {seed} reran jobs:\n{text}"


def jobs(config: dict) -> dict[str, int]:
    return grid_summary.summarize(config)["jobs"]


def added_runs(before: dict, after: dict) -> dict[str, int]:
    """An edit that adds runs: per rule, the grid's jobs after it less those before, then the analysis."""
    old, new = jobs(before), jobs(after)
    return {rule: n - old.get(rule, 0) for rule, n in new.items() if n > old.get(rule, 0)} | ANALYSIS


def add_df(config):
    config["tasks"]["translation_ende"]["finetune_examples"]["fmt"].append(48)


def add_model(config):
    config["models"]["m3"] = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 48, "model_dim": 20}


def fewer_new_tokens(config):
    config["evaluate"]["max_new_tokens"] = 16


def smaller_dev_batches(config):
    config["finetune"]["dev_batch_size"] = 8


def rarer_resume_states(config):
    config["pretrain"]["save_every"] = 1000


def lora_dropout(config):
    config["finetune"]["methods"]["lora"]["dropout"] = 0.1


def method_options_spelled_out(config):
    """The methods' options written at their schema defaults: the same study."""
    config["finetune"]["methods"]["lora"] |= {"alpha_over_rank": 1, "dropout": 0, "target_modules": "all-linear"}
    config["finetune"]["methods"]["prompt"]["init"] = "sample_vocab"


def lora_jobs(before: dict, after: dict) -> dict[str, int]:
    """Every LoRA run and what reads it; no other method's."""
    lora = [c for c in grid.expand_conditions(after).values() if c.method == "lora"]
    runs = len(lora) * after["finetune"]["seeds"]
    transfer = sum(grid.has_transfer(after, c) for c in lora) * after["finetune"]["seeds"]
    return {"finetune": runs, "evaluate": runs} | ({"transfer": transfer} if transfer else {}) | ANALYSIS


def finetuning_jobs(before: dict, after: dict) -> dict[str, int]:
    """Every finetuning run and what reads it; no pretraining, no base-model baseline."""
    new = jobs(after)
    return {rule: new[rule] for rule in ("finetune", "evaluate", "transfer")} | ANALYSIS


def no_jobs(before: dict, after: dict) -> dict[str, int]:
    return {}


def decoding_jobs(before: dict, after: dict) -> dict[str, int]:
    """Every job that decodes (evaluation, zero- and few-shot transfer); no training."""
    new = jobs(after)
    return {rule: new[rule] for rule in ("evaluate", "transfer", "base_transfer")} | ANALYSIS


EDITS = {  # name: (the edit, the jobs it must schedule from the configs before and after it)
    "add a Df size": (add_df, added_runs),
    "add a model size": (add_model, added_runs),
    "change evaluate.max_new_tokens": (fewer_new_tokens, decoding_jobs),
    "change finetune.dev_batch_size": (smaller_dev_batches, finetuning_jobs),
    "change pretrain.save_every (no output changes)": (rarer_resume_states, no_jobs),
    "change finetune.methods.lora.dropout": (lora_dropout, lora_jobs),
    "spell out the methods' option defaults": (method_options_spelled_out, no_jobs),
}


@pytest.mark.parametrize(
    "name, metadata",
    [
        ("add a Df size", False),
        ("add a model size", True),
        ("add a model size", False),
        ("change evaluate.max_new_tokens", True),
        ("change finetune.dev_batch_size", True),
        ("change pretrain.save_every (no output changes)", True),
        ("change finetune.methods.lora.dropout", True),
        ("spell out the methods' option defaults", True),
    ],
)
def test_a_meaningful_edit_schedules_exactly_its_jobs(tiny_copy, tmp_path, name, metadata):
    """Without .snakemake/metadata (a study carried to another checkout) only mtimes are left to
    go by: new runs must still be built, through the default target that names every run."""
    edit, expected = EDITS[name]
    config = copy.deepcopy(TINY_CONFIG)
    edit(config)
    if not metadata:
        shutil.rmtree(tiny_copy / ".snakemake" / "metadata")
    want = expected(TINY_CONFIG, config)
    assert want.get("finetune", 0) + want.get("evaluate", 0) > 0 or expected is no_jobs
    assert planned_jobs(tiny_copy, write_config(tmp_path / "c.yaml", config)) == want


def test_an_edited_local_file_reruns_its_data_job_and_everything_downstream(tiny_copy, tmp_path):
    # The finished tiny study, its data now read from the user's files (the same records): the
    # metadata recorded the synthetic source, so it goes, and --touch marks the outputs current.
    config, _ = local_config(tmp_path)
    config["study"] = "tiny"
    path = write_config(tmp_path / "local.yaml", config)
    shutil.rmtree(tiny_copy / ".snakemake" / "metadata")
    snakemake(tiny_copy, "--touch", "--cores", "1", config=path)
    assert planned_jobs(tiny_copy, path) == {}

    dev = tmp_path / "files" / "dev.csv"
    dev.write_text(dev.read_text().replace("src,tgt", "tgt,src"))
    newest = max(f.stat().st_mtime for f in (tiny_copy / "results").rglob("*") if f.is_file())
    os.utime(dev, (newest + 60, newest + 60))  # newer than every output, whatever the clock did

    task = copy.deepcopy(config)  # the grid of the edited file's task alone
    task["tasks"] = {"translation_ende": config["tasks"]["translation_ende"]}
    downstream = {
        rule: n
        for rule, n in jobs(task).items()
        if rule in ("task_data", "tokenize_task", "finetune", "evaluate", "transfer", "base_transfer")
    }
    assert downstream["finetune"] > 0 and downstream["base_transfer"] > 0
    assert planned_jobs(tiny_copy, path) == downstream | ANALYSIS
