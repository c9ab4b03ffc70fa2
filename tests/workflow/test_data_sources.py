"""The hf and local sources through the real data rules: the user's files (every format) and a
saved Hugging Face dataset become the same raw splits and token arrays as the built-in generator's;
an hf dataset that cannot be fetched offline stops the run with one line and leaves nothing."""

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftscale.data import common, sources
from tests.workflow.conftest import snakemake, write_config
from tests.workflow.test_tiny_study import TINY_CONFIG

pytestmark = pytest.mark.workflow
DATA_RULES = ["--until", "tokenize_pretrain", "tokenize_task", "tokenize_zero_shot"]
SPLITS = ("train", "dev", "test")


def synthetic_splits(config: dict) -> dict:
    """What the built-in generator gives for each task split, zero-shot set and pretraining language."""
    source = sources.SyntheticSource(config["seed"])
    out = {}
    for name, task in config["tasks"].items():
        for split in SPLITS:
            out[name, split] = source.task_records(name, task, split, task[f"{split}_examples"])
        for lang in task.get("zero_shot_sources", []):
            out[name, f"zero_shot_{lang}"] = source.zero_shot_records(
                name, lang, task, config["evaluate"]["transfer"]["zero_shot_examples"]
            )
    for lang in config["families"]["ende"]["languages"]:
        out["pretrain", lang] = list(
            source.pretrain_lines("ende", [lang], "train", 0, config["data"]["pretrain_lines"] * 2)
        )
    return out


def local_config(tmp_path) -> tuple[dict, dict]:
    """The tiny study on the user's files: one format per split, columns renamed where they can be."""
    config = copy.deepcopy(TINY_CONFIG)
    config["study"] = "local"
    data, files = synthetic_splits(config), tmp_path / "files"
    files.mkdir()
    ende = data["translation_ende", "train"]
    (files / "train.en").write_text("".join(r["source"] + "\n" for r in ende), encoding="utf-8")
    (files / "train.de").write_text("".join(r["target"] + "\n" for r in ende), encoding="utf-8")
    rows = data["translation_ende", "dev"]
    (files / "dev.csv").write_text("src,tgt\n" + "".join(f'"{r["source"]}","{r["target"]}"\n' for r in rows))
    rows = data["translation_ende", "test"]
    pq.write_table(
        pa.table({"en": [r["source"] for r in rows], "de": [r["target"] for r in rows]}), files / "test.parquet"
    )
    for split in SPLITS:  # summarization: JSONL with a language column (the prefix is the source's)
        rows = [dict(r, source=r["source"].split(": ", 1)[1]) for r in data["summarization", split]]
        (files / f"sum_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for lang in ("fr", "zh"):
        rows = data["translation_ende", f"zero_shot_{lang}"]
        (files / f"zero_{lang}.tsv").write_text(
            "source\ttarget\n" + "".join(f"{r['source']}\t{r['target']}\n" for r in rows)
        )
    for lang in ("en", "de"):
        (files / f"{lang}.txt").write_text("\n".join(data["pretrain", lang]) + "\n", encoding="utf-8")
    config["data"] = {
        **config["data"],
        "source": "local",
        "local": {
            "pretrain": {lang: {"path": str(files / f"{lang}.txt")} for lang in ("en", "de")},
            "tasks": {
                "translation_ende": {
                    "train": {"source": str(files / "train.en"), "target": str(files / "train.de"), "lang": "en"},
                    "dev": {
                        "path": str(files / "dev.csv"),
                        "columns": {"source": "src", "target": "tgt"},
                        "lang": "en",
                    },
                    "test": {
                        "path": str(files / "test.parquet"),
                        "columns": {"source": "en", "target": "de"},
                        "lang": "en",
                    },
                },
                "summarization": {split: {"path": str(files / f"sum_{split}.jsonl")} for split in SPLITS},
            },
            "zero_shot": {
                "translation_ende": {
                    lang: {"path": str(files / f"zero_{lang}.tsv"), "lang": lang} for lang in ("fr", "zh")
                }
            },
        },
    }
    return config, data


def test_local_files_become_the_same_raw_splits_and_tokens(tmp_path):
    config, expected = local_config(tmp_path)
    snakemake(tmp_path, "--cores", "2", *DATA_RULES, config=write_config(tmp_path / "c.yaml", config))
    raw = tmp_path / "results" / "local" / "data" / "raw"
    for (name, split), records in expected.items():
        if name == "pretrain":
            continue
        assert common.read_jsonl(raw / name / f"{split}.jsonl") == records, (name, split)
    manifest = json.loads((raw / "translation_ende" / "manifest.json").read_text())
    assert manifest["source"] == "local" and manifest["files"]["train"]["rows"] == len(
        expected["translation_ende", "train"]
    )
    assert [entry["files"] for entry in manifest["files_read"]] == [
        [str(tmp_path / "files" / name) for name in names]
        for names in (["train.en", "train.de"], ["dev.csv"], ["test.parquet"])
    ]
    pretrain = (raw / "pretrain_ende" / "train.txt").read_text().splitlines()
    assert set(pretrain) <= set(expected["pretrain", "en"]) | set(expected["pretrain", "de"]) and len(pretrain) > 1000
    tokens = tmp_path / "results" / "local" / "data" / "tokens"
    assert {p.name for p in (tokens / "translation_ende").iterdir()} >= {
        "train",
        "dev",
        "test",
        "zero_shot_fr",
        "zero_shot_zh",
    }

    # An edited file reruns its own data job and what depends on it, nothing else.
    dev_csv = tmp_path / "files" / "dev.csv"
    dev_csv.write_text(dev_csv.read_text().replace("src,tgt", "source,target"))
    failed = snakemake(tmp_path, "--cores", "1", *DATA_RULES, config=tmp_path / "c.yaml", check=False)
    assert failed.returncode != 0
    assert "Data error (task translation_ende): " in failed.stderr and "dev.csv: no column 'src'" in failed.stderr
    assert not (raw / "translation_ende" / "dev.jsonl").exists()  # nothing half-written left looking complete


def test_saved_hf_dataset_feeds_the_pipeline(tmp_path):
    import datasets

    config = copy.deepcopy(TINY_CONFIG)
    config["study"] = "hf"
    del config["tasks"]["summarization"]
    config["tasks"]["translation_ende"]["zero_shot_sources"] = []
    data = synthetic_splits(config)
    wmt = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(
                [{"translation": {"en": r["source"], "de": r["target"]}} for r in data["translation_ende", name]]
            )
            for split, name in (("train", "train"), ("validation", "dev"), ("test", "test"))
        }
    )
    wmt.save_to_disk(tmp_path / "wmt")
    corpus = {}
    for lang in ("en", "de"):
        datasets.DatasetDict(
            {"train": datasets.Dataset.from_list([{"text": t} for t in data["pretrain", lang]])}
        ).save_to_disk(tmp_path / f"c4_{lang}")
        corpus[lang] = {"dataset": str(tmp_path / f"c4_{lang}"), "split": "train"}
    columns = {"source": "translation.en", "target": "translation.de"}
    config["data"] = {
        **config["data"],
        "source": "hf",
        "hf": {
            "pretrain": corpus,
            "tasks": {
                "translation_ende": {
                    split: {"dataset": str(tmp_path / "wmt"), "split": hf_split, "columns": columns, "lang": "en"}
                    for split, hf_split in (("train", "train"), ("dev", "validation"), ("test", "test"))
                }
            },
        },
    }
    snakemake(tmp_path, "--cores", "2", *DATA_RULES, config=write_config(tmp_path / "c.yaml", config))
    raw = tmp_path / "results" / "hf" / "data" / "raw"
    for split in SPLITS:
        assert common.read_jsonl(raw / "translation_ende" / f"{split}.jsonl") == data["translation_ende", split]
    manifest = json.loads((raw / "pretrain_ende" / "manifest.json").read_text())
    assert manifest["source"] == "hf" and [d["language"] for d in manifest["datasets"]] == ["en", "de", "en", "de"]
    assert (tmp_path / "results" / "hf" / "data" / "tokens" / "translation_ende" / "train").is_dir()


def test_hf_dataset_offline_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    config = copy.deepcopy(TINY_CONFIG)
    config["study"] = "offline"
    spec = {"dataset": "nonexistent-org/wmt-nowhere", "config": "de-en", "split": "train"}
    config["data"] = {
        **config["data"],
        "source": "hf",
        "hf": {
            "pretrain": {"en": spec, "de": spec},
            "tasks": {name: {split: spec for split in SPLITS} for name in config["tasks"]},
            "zero_shot": {"translation_ende": {"fr": spec, "zh": spec}},
        },
    }
    result = snakemake(
        tmp_path,
        "--cores",
        "1",
        "--until",
        "task_data",
        "--keep-going",
        config=write_config(tmp_path / "c.yaml", config),
        check=False,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Data error (task translation_ende)")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "nonexistent-org/wmt-nowhere" in lines[0] and "pre-fetch" in lines[0] and "data.source: local" in lines[0]
    assert not list((tmp_path / "results" / "offline" / "data" / "raw").rglob("*.jsonl"))
