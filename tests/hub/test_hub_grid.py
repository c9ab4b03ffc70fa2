"""Hub families in the config and the grid: conditions on named base models, no pretraining for
them, one fetch per base checkpoint, one-line errors, and the planner's shapes of Hub models."""

import copy
import json
import re

import pytest

from ftscale import config
from ftscale.plan import grid, hub, sizing
from ftscale.plan import summary as grid_summary
from tests.conftest import ROOT

pytestmark = pytest.mark.hub

PYTHIA = {
    "models": {
        "p70m": "EleutherAI/pythia-70m",
        "p160m": "EleutherAI/pythia-160m",
        "p410m": {"id": "EleutherAI/pythia-410m", "revision": "step140000"},
    },
    "base_model": "p160m",
    "revision": "step143000",
    "tokens": 299892736000,
    "checkpoints": {"step36000": 75497472000, "step72000": 150994944000},
}


@pytest.fixture
def hub_config(tiny_config) -> dict:
    """The tiny study with its translation task on a Pythia family (its summarization task still
    on the pretrained En-De family)."""
    tiny_config["families"]["pythia"] = {"hub": copy.deepcopy(PYTHIA)}
    tiny_config["tasks"]["translation_ende"]["family"] = "pythia"
    return tiny_config


def test_hub_family_conditions_and_fetches(hub_config):
    config.validate(hub_config)
    conditions = grid.expand_conditions(hub_config)
    on_hub = [c for c in conditions.values() if c.family == "pythia"]
    assert {c.model for c in on_hub if "model" in c.axes} == {"p70m", "p160m", "p410m"}
    assert {c.pretrain_tokens for c in on_hub if "pretrain" in c.axes} == {75497472000, 150994944000, 299892736000}
    assert {c.model for c in on_hub if c.axes & {"pretrain", "pet"}} == {"p160m"}
    jobs = grid.pretrain_jobs(hub_config, conditions)
    assert jobs and all(job.family == "ende" for job in jobs.values())  # no pretraining for pythia
    fetches = grid.fetch_runs(hub_config, conditions)
    assert {(s.model, s.repo, s.revision) for s in fetches.values()} == {
        ("p70m", "EleutherAI/pythia-70m", "step143000"),
        ("p160m", "EleutherAI/pythia-160m", "step143000"),
        ("p410m", "EleutherAI/pythia-410m", "step140000"),
        ("p160m", "EleutherAI/pythia-160m", "step36000"),
        ("p160m", "EleutherAI/pythia-160m", "step72000"),
    }
    assert set(fetches) == {grid.pretrain_id("pythia", s.model, s.tokens) for s in fetches.values()}


def test_a_study_of_hub_families_alone_needs_no_models_or_pretrain(hub_config):
    hub_config["tasks"].pop("summarization")
    hub_config["families"].pop("ende")
    for key in ("models", "pretrain"):
        hub_config.pop(key)
    hub_config["analysis"]["heldout"] = {"model": ["p410m"], "pretrain": [75497472000]}
    config.validate(hub_config)
    assert grid.pretrain_jobs(hub_config, grid.expand_conditions(hub_config)) == {}
    summary = grid_summary.summarize(hub_config)
    assert summary["finetune_runs"] > 0 and summary["jobs"]["fetch_base"] == 5
    assert "pretrain" not in summary["jobs"] and "tokenizer" not in summary["jobs"]


def set_in(path: str, value):
    def mutate(c):
        *parents, last = path.split(".")
        target = c
        for key in parents:
            target = target[key]
        target[last] = value

    return mutate


@pytest.mark.parametrize(
    "mutate, key, fragment",
    [
        (set_in("families.pythia.hub.base_model", "p9"), "families.pythia.hub.base_model", "'p9'"),
        (
            set_in("families.pythia.hub.checkpoints.step36000", 299892736000),
            "families.pythia.hub.checkpoints.step36000",
            "not below",
        ),
        (
            set_in("families.pythia.hub.checkpoints.step72000", 75497472000),
            "families.pythia.hub.checkpoints.step72000",
            "its own count",
        ),
        (
            set_in("families.pythia.hub.models.p70m", "/no/such/dir"),
            "families.pythia.hub.models.p70m",
            "no config.json",
        ),
        (set_in("families.pythia.hub.models.m1", "EleutherAI/pythia-14m"), "families.pythia.hub.models.m1", "taken"),
        (set_in("families.pythia.hub.tokens", 0), "families.pythia.hub.tokens", "0"),
        (set_in("pretrain.budgets.pythia", [1000]), "pretrain.budgets.pythia", "not pretrained"),
        (set_in("families.pythia", {}), "families.pythia", "not valid"),
    ],
)
def test_bad_hub_config_is_one_line_naming_the_key(hub_config, mutate, key, fragment):
    mutate(hub_config)
    with pytest.raises(config.ConfigError) as error:
        config.validate(hub_config)
    message = str(error.value)
    assert "\n" not in message and message.startswith(key + ":"), message
    assert fragment in message


# Published parameter counts of the Pythia suite (Biderman et al. 2023, Table 1 / the model cards).
PUBLISHED = {
    "pythia-70m": 70_426_624,
    "pythia-160m": 162_322_944,
    "pythia-410m": 405_334_016,
    "pythia-1b": 1_011_781_632,
    "pythia-1.4b": 1_414_647_808,
    "pythia-2.8b": 2_775_208_960,
    "pythia-6.9b": 6_857_302_016,
    "pythia-12b": 11_846_072_320,
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_planner_counts_pythia_parameters_offline(hub_config, name):
    """Without the network, the planner sizes Pythia from the known table, within 0.5% (biases,
    left out, are the difference)."""
    hub_config["families"]["pythia"]["hub"]["models"]["x"] = f"EleutherAI/{name}"
    counted = sizing.model_parameters(hub_config, "x", "pythia")
    assert abs(counted - PUBLISHED[name]) / PUBLISHED[name] < 0.005, (counted, PUBLISHED[name])


def test_unknown_model_offline_is_one_line(hub_config, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_config["families"]["pythia"]["hub"]["models"]["x"] = "nobody/unknown-model"
    with pytest.raises(sizing.PlanError) as error:
        sizing.model_parameters(hub_config, "x", "pythia")
    assert "nobody/unknown-model@step143000" in str(error.value) and "hf download" in str(error.value)


def test_local_directory_shape_from_its_config(hub_config, tmp_path):
    """A local directory's parameters are counted from its config.json: those of the model itself."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    model = GPTNeoXForCausalLM(
        GPTNeoXConfig(vocab_size=512, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256)
    )
    model.save_pretrained(tmp_path / "neox")
    hub_config["families"]["pythia"]["hub"]["models"]["x"] = str(tmp_path / "neox")
    config.validate(hub_config)
    assert json.loads((tmp_path / "neox" / "config.json").read_text())["model_type"] == "gpt_neox"
    weights = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias"))
    assert sizing.model_parameters(hub_config, "x", "pythia") == weights


PYTHIA_CONFIG = ROOT / "configs" / "pythia.yaml"


def test_pythia_config_has_the_papers_three_axes_and_sizes_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pythia = config.load(PYTHIA_CONFIG)
    family = pythia["families"]["pythia"]["hub"]
    params = [sizing.model_parameters(pythia, model, "pythia") for model in family["models"]]
    assert len(params) >= 5 and max(params) / min(params) >= 20
    assert len(hub.sources(pythia, "pythia")) >= 4  # revisions of the base model (tokens seen)
    assert all(tokens % 2_097_152 == 0 for tokens in hub.sources(pythia, "pythia"))
    summary = grid_summary.summarize(pythia)
    assert summary["finetune_runs"] > 0 and summary["pretrain_jobs"] == 0 and summary["jobs"]["fetch_base"] == 10
    assert set(summary["conditions_per_task_axis"]["translation_ende"]) == {"model", "pretrain", "pet"}


def test_pythia_dry_run_offline_never_downloads(tmp_path):
    """`snakemake -n` plans every fetch without the network and leaves the Hugging Face cache empty."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    snakemake = Path(sys.executable).parent / "snakemake"
    result = subprocess.run(
        [
            str(snakemake),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(PYTHIA_CONFIG),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^fetch_base\s+10\s*$", result.stdout, re.M)
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))
