"""Where raw data comes from. A source yields raw splits; nothing downstream knows which source.

Raw splits are plain: pretraining text is a list of lines, a task split is a list of records
{"source", "target", "lang"}. The `synthetic` source draws them from the toy-language generator;
`hf` and `local` sources plug in here with the same two methods.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from ftscale.data import synthetic

PRETRAIN_SPLITS = {"train": 1.0, "val": 0.02}   # val lines as a share of the training lines
TASK_SPLITS = ("train", "dev", "test")


class SyntheticSource:
    """The built-in generator: deterministic per (seed, dataset, split)."""

    def __init__(self, seed: int):
        self.seed = seed

    def _seed(self, *names: str) -> int:
        return synthetic.split_seed(self.seed, "/".join(names))

    def pretrain_lines(self, family: str, languages: list[str], split: str, n_lines: int) -> list[str]:
        lines = []
        for lang in languages:
            lines += synthetic.pretrain_text(lang, n_lines, self._seed("pretrain", family, lang, split))
        random.Random(self._seed("shuffle", family, split)).shuffle(lines)  # languages interleaved
        return lines

    def task_records(self, task_name: str, task: dict, split: str, n: int) -> list[dict]:
        seed = self._seed("task", task_name, split)
        if task["type"] == "translation":
            return synthetic.translation_pairs(task["source_lang"], task["target_lang"], n, seed)
        return synthetic.summarization_examples(n, seed, languages=tuple(task["languages"]))


def get_source(name: str, seed: int):
    if name == "synthetic":
        return SyntheticSource(seed)
    raise ValueError(f"data.source: unknown source {name!r}")


def pretrain_splits(source, family: str, languages: list[str], n_lines: int) -> dict[str, list[str]]:
    return {split: source.pretrain_lines(family, languages, split, max(1, round(n_lines * share)))
            for split, share in PRETRAIN_SPLITS.items()}


def task_splits(source, task_name: str, task: dict) -> dict[str, list[dict]]:
    return {split: source.task_records(task_name, task, split, task[f"{split}_examples"])
            for split in TASK_SPLITS}


def write_lines(lines: list[str], path: Path) -> None:
    path.write_text("".join(line.replace("\n", " ") + "\n" for line in lines), encoding="utf-8")


def write_jsonl(records: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
