"""docs/cluster.md's offline pretraining spec works as written: C4-style json.gz shards downloaded
to a shared directory are streamed by the `hf` source with HF_HUB_OFFLINE=1 and
HF_DATASETS_OFFLINE=1 set (no network, an empty cache)."""

import gzip
import json
import re
from pathlib import Path

import yaml

from ftscale.data import sources

ROOT = Path(__file__).resolve().parents[2]
SHARED = "/shared/project/c4"  # the directory the document downloads to


def documented_spec() -> dict:
    text = (ROOT / "docs" / "cluster.md").read_text()
    block = re.search(r"<!-- snippet: config base=configs/paper.yaml -->\n```yaml\n(.*?)```", text, re.S).group(1)
    return yaml.safe_load(block)["data"]["hf"]["pretrain"]["en"]


def test_the_documented_local_c4_spec_streams_offline(tmp_path, monkeypatch):
    spec = documented_spec()
    assert spec["data_files"].startswith(SHARED)
    shards = tmp_path / "c4" / "en"
    shards.mkdir(parents=True)
    for shard in range(2):
        with gzip.open(shards / f"c4-train.{shard:05d}-of-01024.json.gz", "wt") as f:
            for i in range(30):
                f.write(json.dumps({"text": f"document {shard} {i}", "url": "u"}) + "\n")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    spec = {**spec, "data_files": spec["data_files"].replace(SHARED, str(tmp_path / "c4"))}
    source = sources.get_source("hf", 0, {"hf": {"pretrain": {"en": spec}}})
    splits = {k: list(v) for k, v in sources.pretrain_splits(source, "ende", ["en"], 50, 0.02).items()}
    assert len(splits["train"]) == 50 and len(splits["val"]) == 1
    assert set(splits["train"]) <= {f"document {s} {i}" for s in range(2) for i in range(30)}
