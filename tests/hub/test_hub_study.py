"""A small study on local base models of two architectures (Llama, GPT-NeoX), through real
Snakemake end to end, offline: fetched (not pretrained), tokenized with their own tokenizer,
finetuned with FMT, prompt tuning and LoRA, evaluated, fitted and drawn."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.hub import models
from tests.workflow.conftest import ROOT, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.hub

HUB_TINY = ROOT / "tests" / "configs" / "hub_tiny.yaml"


def study_config(dirs: dict[str, str]) -> dict:
    config = yaml.safe_load(HUB_TINY.read_text())
    hub = config["families"]["tiny"]["hub"]
    hub["models"] = {"llama": dirs["llama"], "neox": dirs["neox"]}
    hub["checkpoints"] = {dirs["llama_early"]: 1000000}
    return config


@pytest.fixture(scope="module")
def hub_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    dirs = models.base_models(root / "models")
    workdir = root / "run"
    workdir.mkdir()
    config = write_config(root / "hub.yaml", study_config(dirs))
    snakemake(workdir, "--cores", "2", config=config)
    return workdir, config, dirs


def test_study_produces_metrics_and_fits_without_pretraining(hub_study):
    workdir, config, _ = hub_study
    results = workdir / "results" / "hub_tiny"
    metrics = pd.read_csv(results / "metrics.csv")
    assert len(metrics) == 3 * (2 + 1 + 1) and set(metrics["status"]) == {"ok"}  # base models x Df of each method
    assert set(metrics["model"]) == {"llama", "neox"} and set(metrics["method"]) == {"fmt", "prompt", "lora"}
    assert metrics[["test_loss", "bleu", "chrf"]].notna().all().all()
    pretrain = pd.read_csv(results / "pretrain.csv")
    assert set(pretrain["status"]) == {"hub"} and len(pretrain) == 3
    assert json.loads((results / "fits" / "fits.json").read_text())
    assert (results / "figures" / "fig02_model_size.png").stat().st_size > 0
    assert not (results / "data" / "tokens" / "pretrain_tiny").exists()  # nothing pretrained
    assert (results / "data" / "tokenizer" / "tiny" / "tokenizer_config.json").is_file()


def test_parameters_come_from_the_models(hub_study):
    workdir, _, dirs = hub_study
    from transformers import AutoModelForCausalLM

    pretrain = pd.read_csv(workdir / "results" / "hub_tiny" / "pretrain.csv").set_index(["model", "pretrain_tokens"])
    for name, tokens in (("llama", 2000000), ("neox", 2000000)):
        model = AutoModelForCausalLM.from_pretrained(dirs[name])
        assert pretrain.loc[(name, tokens), "params"] == sum(p.numel() for p in model.parameters())


def test_checkpoints_load_with_transformers_and_peft(hub_study):
    workdir, _, dirs = hub_study
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, GPTNeoXForCausalLM, LlamaForCausalLM

    runs = workdir / "results" / "hub_tiny" / "finetune" / "translation_ende"
    fmt = AutoModelForCausalLM.from_pretrained(runs / "neox-2000000tok" / "fmt" / "df16" / "seed0" / "checkpoint")
    assert isinstance(fmt, GPTNeoXForCausalLM)
    for name, cls in (("neox", GPTNeoXForCausalLM), ("llama", LlamaForCausalLM)):
        for method in ("lora-2", "prompt-4"):
            base = AutoModelForCausalLM.from_pretrained(dirs[name])
            adapted = PeftModel.from_pretrained(
                base, runs / f"{name}-2000000tok" / method / "df8" / "seed0" / "checkpoint"
            )
            assert isinstance(adapted.get_base_model(), cls)


# A changed base model reruns its fetch, the runs finetuned from it (the pretraining-data axis: the
# early checkpoint, 2 + 1 + 1 Df of the 3 methods) and the analysis; nothing of the other base models.
RERUN = {"fetch_base": 1, "finetune": 4, "evaluate": 4, "aggregate": 1, "fit": 1, "figures": 1}


def test_a_changed_base_directory_reruns_only_what_depends_on_it(hub_study, tmp_path):
    workdir, config, dirs = hub_study
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    assert planned_jobs(copy, config=config) == {}
    models.save(models.llama(5), models.llama_tokenizer(), Path(dirs["llama_early"]))  # new weights
    assert planned_jobs(copy, config=config) == RERUN


def test_a_base_model_moved_to_another_directory_reruns_only_what_depends_on_it(hub_study, tmp_path):
    workdir, config, dirs = hub_study
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    moved = shutil.copytree(dirs["llama_early"], tmp_path / "elsewhere")
    changed = study_config(dirs | {"llama_early": str(moved)})
    assert planned_jobs(copy, config=write_config(tmp_path / "moved.yaml", changed)) == RERUN
