"""Where raw data comes from. A source yields raw splits; nothing downstream knows which source.

Raw splits are plain: pretraining text is lines (an iterator: hf and local stream them, as the
writer here does; the synthetic source shuffles its lines, so it holds them), a task split is a list of records
{"source", "target", "lang"}. The `synthetic` source draws them from the toy-language generator;
`hf` (Hugging Face `datasets`, ftscale.data.hf) and `local` (the user's files, ftscale.data.local)
read them from the datasets and files named under `data.hf` / `data.local` in the config, with the
same methods (ftscale.data.common.Source). Their problems are DataError: one line naming the
dataset or file and what is wrong. This module also writes the splits (the data rules' scripts).
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ftscale.data import synthetic
from ftscale.data.common import TASK_SPLITS, DataError, Source, pretrain_split_offsets, sha256, split_seed


class SyntheticSource(Source):
    """The built-in generator: deterministic per (seed, dataset, split). Its options
    (data.synthetic) may set summarization_prefix, as the other sources' do."""

    name = "synthetic"

    def specs(self, *keys: str) -> None:
        return None  # generated: no datasets or files to name

    def zero_shot_seed_name(self, task_name: str, lang: str) -> str:
        return f"task/{task_name}_zero_shot_{lang}/test"  # as before the base class: the toy's sets stay the same

    def rows(self, specs, task: dict, split: str, n: int, seed: int) -> tuple[list[dict], str]:
        if task["type"] == "translation":
            return synthetic.translation_pairs(task["source_lang"], task["target_lang"], n, seed), self.name
        return synthetic.summarization_examples(n, seed, languages=tuple(task["languages"])), self.name

    def pretrain_lines(self, family: str, languages: list[str], split: str, skip: int, n_lines: int) -> list[str]:
        lines = []  # generated: each split from its own seed, so `skip` has nothing to skip
        for lang in languages:
            lines += synthetic.pretrain_text(lang, n_lines, split_seed(self.seed, f"pretrain/{family}/{lang}/{split}"))
        random.Random(split_seed(self.seed, f"shuffle/{family}/{split}")).shuffle(lines)  # languages interleaved
        return lines


def get_source(name: str, seed: int, data: dict | None = None) -> Source:
    """The source `name` (config data.source); `data` is the config's `data` section, whose
    `hf` / `local` / `synthetic` key holds that source's datasets, files or options."""
    options = (data or {}).get(name)
    if name == "synthetic":
        return SyntheticSource(seed, options)
    if name in ("hf", "local"):
        if not options:
            raise DataError(f"data.{name}: missing: the {name!r} source needs its datasets or files configured")
        if name == "hf":
            from ftscale.data.hf import HFSource

            return HFSource(seed, options)
        from ftscale.data.local import LocalSource

        return LocalSource(seed, options)
    raise DataError(f"data.source: unknown source {name!r}")


# Splits of a source, and writing them: the data rules' scripts.


def pretrain_splits(
    source, family: str, languages: list[str], n_lines: int, val_share: float
) -> dict[str, Iterable[str]]:
    """Each split's lines (common.pretrain_split_offsets), read (hf, local) as the writer asks for them."""
    return {
        split: source.pretrain_lines(family, languages, split, skip, take)
        for split, (skip, take) in pretrain_split_offsets(n_lines, val_share).items()
    }


def task_splits(source, task_name: str, task: dict) -> dict[str, list[dict]]:
    return {split: source.task_records(task_name, task, split, task[f"{split}_examples"]) for split in TASK_SPLITS}


def write_lines(lines: Iterable[str], path: Path) -> int:
    """One line a line (newlines inside a line become spaces), as they come; returns the count."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(line.replace("\n", " ") + "\n")
            count += 1
    return count


def write_jsonl(records: Iterable[dict], path: Path) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_outputs(
    outputs: dict[str, tuple[Path, object]], writer, manifest_path: Path | None, describe: Callable[[], dict]
) -> dict:
    """Write each (path, content) with `writer` (which returns its row count) under a temporary name,
    then the manifest (describe(), asked once the files are written: a streamed source learns what
    it read while they are, with the row counts and sha256 of every file), then rename them all
    into place, the manifest last: an interrupted job leaves only temporary files, never a
    complete-looking split."""
    temporary = {}
    files = {}
    for name, (path, content) in outputs.items():
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        rows = writer(content, tmp)
        temporary[tmp] = path
        files[name] = {"path": path.name, "rows": rows, "sha256": sha256(tmp)}
    manifest = {**describe(), "files": files}
    if manifest_path is not None:
        manifest_path = Path(manifest_path)
        tmp = manifest_path.with_name(f".{manifest_path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        temporary[tmp] = manifest_path
    for tmp, path in temporary.items():
        os.replace(tmp, path)
    return manifest


def read_or_stop(what: str, read, terminal):
    """read()'s result; on a DataError, stop the job with one line naming `what`, written to the
    terminal (a job's stderr goes to its log) and as the exit message."""
    try:
        return read()
    except DataError as error:
        message = f"Data error ({what}): {error}"
        print(message, file=terminal, flush=True)
        sys.exit(message)
