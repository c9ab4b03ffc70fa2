"""Where raw data comes from. A source yields raw splits; nothing downstream knows which source.

Raw splits are plain: pretraining text is a list of lines, a task split is a list of records
{"source", "target", "lang"}. The `synthetic` source draws them from the toy-language generator;
`hf` (Hugging Face `datasets`, ftscale.data.hf) and `local` (the user's files, ftscale.data.local)
read them from the datasets and files named under `data.hf` / `data.local` in the config, with the
same methods. Their problems are DataError: one line naming the dataset or file and what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sys
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

    def zero_shot_records(self, task_name: str, lang: str, task: dict, n: int) -> list[dict]:
        """Test records of a zero-shot direction: `lang` into the task's target language."""
        direction = {"type": "translation", "source_lang": lang, "target_lang": task["target_lang"]}
        return self.task_records(f"{task_name}_zero_shot_{lang}", direction, "test", n)

    def manifest(self) -> dict:
        return {"source": "synthetic", "seed": self.seed}


class DataError(ValueError):
    """A data-source problem; str() is one line naming the dataset or file and what is wrong."""


def get_source(name: str, seed: int, data: dict | None = None):
    """The source `name` (config data.source); `data` is the config's `data` section, whose
    `hf` / `local` key holds that source's datasets or files."""
    if name == "synthetic":
        return SyntheticSource(seed)
    if name in ("hf", "local"):
        options = (data or {}).get(name)
        if not options:
            raise DataError(f"data.{name}: missing: the {name!r} source needs its datasets or files configured")
        if name == "hf":
            from ftscale.data.hf import HFSource
            return HFSource(seed, options)
        from ftscale.data.local import LocalSource
        return LocalSource(seed, options)
    raise DataError(f"data.source: unknown source {name!r}")


# Shared by the hf and local sources: which spec serves which split, turning rows into records,
# and choosing n of them.

def as_list(specs) -> list:
    return specs if isinstance(specs, list) else [specs]


def task_specs(options: dict, source: str, task_name: str, split: str) -> list[dict]:
    try:
        return as_list(options["tasks"][task_name][split])
    except KeyError:
        raise DataError(f"data.{source}.tasks.{task_name}.{split}: not configured") from None


def zero_shot_specs(options: dict, source: str, task_name: str, lang: str) -> list[dict]:
    try:
        return as_list(options["zero_shot"][task_name][lang])
    except KeyError:
        raise DataError(f"data.{source}.zero_shot.{task_name}.{lang}: not configured") from None


def pretrain_specs(options: dict, source: str, lang: str) -> list[dict]:
    try:
        return as_list(options["pretrain"][lang])
    except KeyError:
        raise DataError(f"data.{source}.pretrain.{lang}: not configured (a corpus per language of the family)") from None


SUMMARIZATION_PREFIX = "Summarize the following document in {language}: "


def finish_records(records: list[dict], task: dict, options: dict, where: str) -> list[dict]:
    """Default languages, and the summarization prefix (the paper's), once per record."""
    default_lang = task.get("source_lang", "")
    prefix = options.get("summarization_prefix", SUMMARIZATION_PREFIX) if task.get("type") == "summarization" else ""
    for record in records:
        if not record.get("lang"):
            if task.get("type") == "summarization":
                raise DataError(f"{where}: a summarization record has no language: set `lang` or columns.lang")
            record["lang"] = default_lang
        if prefix:
            language = synthetic.LANGUAGE_NAMES.get(record["lang"], record["lang"])
            record["source"] = prefix.format(language=language, lang=record["lang"]) + record["source"]
    return records


def choose(total: int, n: int, seed: int, split: str, where: str) -> list[int] | None:
    """Which rows of `total` to keep for a split of n records: all (None) when there are at most n;
    else a seeded random n, in their original order. A train split must have its n rows (the
    finetuning pool); a dev or test split is capped at what there is."""
    if total < n and split == "train":
        raise DataError(f"{where}: has {total} rows, fewer than the {n} the task's train_examples asks for")
    if total <= n:
        return None
    return sorted(random.Random(seed).sample(range(total), n))


def interleave(per_language: list[list[str]]) -> list[str]:
    """Lines of several languages, alternated (round robin), so any prefix mixes the languages."""
    out = []
    for i in range(max((len(lines) for lines in per_language), default=0)):
        out += [lines[i] for lines in per_language if i < len(lines)]
    return out


def split_offsets(split: str, n_lines: int) -> tuple[int, int]:
    """(skip, take) of a pretraining split within one language's corpus: val is its first lines,
    train the lines after them (the share of pretrain_splits), so the two never overlap."""
    if split == "val":
        return 0, n_lines
    if split == "train":
        return max(1, round(n_lines * PRETRAIN_SPLITS["val"])), n_lines
    raise DataError(f"pretraining split {split!r}: expected train or val")


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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_outputs(outputs: dict[str, tuple[Path, object]], writer, manifest_path: Path | None, manifest: dict) -> dict:
    """Write each (path, content) with `writer` under a temporary name, then the manifest (row
    counts and sha256 of every file), then rename them all into place, the manifest last: an
    interrupted job leaves only temporary files, never a complete-looking split."""
    temporary = {}
    files = {}
    for name, (path, content) in outputs.items():
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        writer(content, tmp)
        temporary[tmp] = path
        files[name] = {"path": path.name, "rows": len(content), "sha256": sha256(tmp)}
    manifest = {**manifest, "files": files}
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


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
