"""What every data source shares: the error, the seed function, the language names, the splits,
and the base class that turns a source's rows into a task's records.

A source (ftscale.data.sources: synthetic; ftscale.data.hf; ftscale.data.local) implements
`rows(...)`, which reads or generates the records of one split, and `pretrain_lines(...)`; the
base class builds on `rows` what is the same for all of them: which part of the config serves a
split, the zero-shot direction, the seed of each split, the default language and the
summarization prefix, and the manifest. This module imports no other module of ftscale.data, so
the sources depend on it and never on each other.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

# Text a streamed data stage reads, or tokenizes, at once (bytes read; characters encoded): what it
# holds in memory, whatever the corpus size. The planner's memory of those stages is measured at it
# (ftscale.plan.data_jobs, bench/bench_tokenize.py).
STREAM_CHUNK = 1 << 22
TASK_SPLITS = ("train", "dev", "test")
# the characters str.splitlines ends a line at (CR LF: a CR, then an LF that ends nothing more)
LINE_ENDS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "zh": "Chinese",
    "fr": "French",
    "es": "Spanish",
    "tr": "Turkish",
    "hi": "Hindi",
    "pl": "Polish",
}
# The paper's instruction before each summarization document; data.<source>.summarization_prefix
# replaces it ({language}: the document's language by name, {lang}: its code).
SUMMARIZATION_PREFIX = "Summarize the following document in {language}: "


class DataError(ValueError):
    """A data-source problem; str() is one line naming the dataset or file and what is wrong."""


def split_seed(base_seed: int, name: str) -> int:
    """A stable seed for one dataset/split, derived from the study's base seed."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}/{name}".encode()).digest()[:8], "little")


def zero_shot_direction(task: dict, lang: str) -> dict:
    """A zero-shot set's task: translation from `lang` into the translation task's target language."""
    return {"type": "translation", "source_lang": lang, "target_lang": task["target_lang"]}


def as_list(specs) -> list:
    return specs if isinstance(specs, list) else [specs]


def spec_files(spec: dict) -> list[str]:
    """The files a local spec reads (rule inputs, so a changed file reruns its data job)."""
    if "path" in spec:
        return [str(p) for p in as_list(spec["path"])]
    return [str(spec["source"]), str(spec["target"])]


def files_of(specs) -> list[str]:
    return [f for spec in as_list(specs) for f in spec_files(spec)]


def study_files(config: dict) -> list[str]:
    """Every file data.local names for what the grid reads: the languages of the families that
    pretrain, each task's three splits, each task's zero-shot sources."""
    options, specs = config["data"].get("local", {}), []
    for family in config.get("pretrain", {}).get("budgets", {}):
        specs += [options.get("pretrain", {}).get(lang) for lang in config["families"][family].get("languages", [])]
    for name, task in config["tasks"].items():
        specs += list(options.get("tasks", {}).get(name, {}).values())
        specs += [options.get("zero_shot", {}).get(name, {}).get(lang) for lang in task["zero_shot_sources"]]
    return list(dict.fromkeys(f for spec in specs if spec is not None for f in files_of(spec)))


def missing_files(config: dict) -> list[str]:
    """study_files that are not there (relative paths: from the current directory, Snakemake's)."""
    return [f for f in study_files(config) if not Path(f).expanduser().is_file()]


def config_part(options: dict, source: str, *keys: str):
    """options[keys[0]][keys[1]]...: the datasets or files of one split, as a list of specs; a
    DataError naming data.<source>.<keys> when the config has none."""
    part = options
    try:
        for key in keys:
            part = part[key]
    except (KeyError, TypeError):
        hint = " (a corpus per language of the family)" if keys[0] == "pretrain" else ""
        raise DataError(f"data.{source}.{'.'.join(keys)}: not configured{hint}") from None
    return as_list(part)


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
            language = LANGUAGE_NAMES.get(record["lang"], record["lang"])
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


def interleave(per_language: list[Iterable[str]]) -> Iterator[str]:
    """Lines of several languages, alternated (round robin), so any prefix mixes the languages;
    lazily, one line of each at a time."""
    running = [iter(lines) for lines in per_language]
    while running:
        for lines in list(running):
            line = next(lines, None)
            if line is None:
                running.remove(lines)
            else:
                yield line


def pretrain_split_offsets(pretrain_lines: int, val_share: float) -> dict[str, tuple[int, int]]:
    """(skip, take) of each pretraining split within one language's corpus: val is its first
    max(1, round(pretrain_lines x val_share)) lines (data.pretrain_val_share), train the
    pretrain_lines after them, so the two never overlap."""
    val_lines = max(1, round(pretrain_lines * val_share))
    return {"train": (val_lines, pretrain_lines), "val": (0, val_lines)}


def iter_jsonl(path) -> Iterator[dict]:
    """Records of a raw split (jsonl), as the data rules wrote them, one at a time."""
    with open(path, encoding="utf-8") as f:
        yield from (json.loads(line) for line in f if line.strip())


def read_jsonl(path) -> list[dict]:
    return list(iter_jsonl(path))


def text_blocks(path) -> Iterator[list[str]]:
    """The lines of a UTF-8 text file, exactly as `read_text().splitlines()` gives them (all of str's
    line boundaries; CR LF counts once), as one list per STREAM_CHUNK bytes read: memory bounded by a
    chunk, not the file, and no Python work per line (a list may be empty). Bytes that are not UTF-8
    are a DataError naming the file and the offset."""
    decoder, carry, offset = codecs.getincrementaldecoder("utf-8")(), "", 0

    def decode(block: bytes) -> str:
        pending = len(decoder.getstate()[0])  # bytes of a character the previous block cut
        try:
            return decoder.decode(block, final=not block)
        except UnicodeDecodeError as error:
            at = offset - pending + error.start
            raise DataError(f"{path}: not UTF-8 text (undecodable byte at offset {at})") from None

    with open(path, "rb") as f:
        while block := f.read(STREAM_CHUNK):
            text = carry + decode(block)
            offset += len(block)
            lines = text.splitlines()
            # the last line waits for the next block unless a boundary ends it (a CR may be half of CR LF)
            if text.endswith("\r"):
                carry = lines.pop() + "\r"
            else:
                carry = "" if text[-1:] in LINE_ENDS or not lines else lines.pop()
            yield lines
    yield (carry + decode(b"")).splitlines()


def text_lines(path) -> Iterator[str]:
    """text_blocks(path), a line at a time."""
    return itertools.chain.from_iterable(text_blocks(path))


def chunks(items: Iterable, length=len) -> Iterator[list]:
    """Lists of consecutive items (lines, or records by `length`) of about STREAM_CHUNK characters in
    all, at least one item each."""
    items, size = iter(items), STREAM_CHUNK
    while first := list(itertools.islice(items, 1)):
        batch, total = first, length(first[0])
        while total < size and (item := next(items, None)) is not None:
            batch.append(item)
            total += length(item) + 1
        yield batch


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Source:
    """A data source: records of a task's splits and of its zero-shot sets, and a manifest of what
    was read. Subclasses set `name` (data.source) and implement `rows` and `pretrain_lines`."""

    name = ""
    read_key: str | None = None  # the manifest key that lists what was read (None: nothing read)

    def __init__(self, seed: int, options: dict | None = None):
        self.seed, self.options = seed, dict(options or {})
        self.read: list[dict] = []

    def rows(self, specs: list | None, task: dict, split: str, n: int, seed: int) -> tuple[list[dict], str]:
        """(records {"source", "target", "lang"} of one split, a label naming where they came from);
        `specs` are the split's datasets or files from the config (None for a generator)."""
        raise NotImplementedError

    def pretrain_lines(self, family: str, languages: list[str], split: str, skip: int, n_lines: int) -> Iterable[str]:
        """A pretraining split's n_lines of each language after its first `skip` (a source that reads
        a corpus; a generator seeds each split apart); an iterator reads them only as asked for."""
        raise NotImplementedError

    def specs(self, *keys: str) -> list | None:
        return config_part(self.options, self.name, *keys)

    def zero_shot_seed_name(self, task_name: str, lang: str) -> str:
        return f"zero_shot/{task_name}/{lang}"

    def task_records(self, task_name: str, task: dict, split: str, n: int) -> list[dict]:
        specs = self.specs("tasks", task_name, split)
        records, where = self.rows(specs, task, split, n, split_seed(self.seed, f"task/{task_name}/{split}"))
        return finish_records(records, task, self.options, where)

    def zero_shot_records(self, task_name: str, lang: str, task: dict, n: int) -> list[dict]:
        """Test records of a zero-shot direction: `lang` into the task's target language."""
        direction = zero_shot_direction(task, lang)
        specs = self.specs("zero_shot", task_name, lang)
        seed = split_seed(self.seed, self.zero_shot_seed_name(task_name, lang))
        records, where = self.rows(specs, direction, "test", n, seed)
        return finish_records(records, direction, self.options, where)

    def manifest(self) -> dict:
        return {"source": self.name, "seed": self.seed} | ({self.read_key: self.read} if self.read_key else {})
