"""The `hf` source: raw splits from Hugging Face `datasets`, as named in the config (`data.hf`).

A dataset spec (the config's `data.hf.tasks.<task>.<split>`, `data.hf.pretrain.<lang>`,
`data.hf.zero_shot.<task>.<lang>`; a list of specs is concatenated):

    dataset:  a Hub id (wmt/wmt14), a directory written by `save_to_disk`, a local dataset
              directory, or a builder (json, csv, parquet, text) with data_files
    config:   the dataset's configuration (de-en); optional
    split:    train / validation / test, or a slice (train[:1000]; not with streaming)
    revision: a Hub commit, branch or tag; optional (recorded in the manifest)
    data_files: for builders and data-file repositories; optional
    columns:  where the fields are: {source, target, lang} for tasks, {text} for pretraining;
              a dotted name reads a nested field (translation.en)
    lang:     the records' language when no column holds it
    target_config: take `columns.target` from this other config of the same dataset, row by row
              (Flores: one config per language)
    streaming: read without downloading the whole dataset (default: true for pretraining)

Nothing here touches the network until a job asks for rows; without network a Hub dataset fails
with one line naming it and how to pre-fetch it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ftscale.data.common import DataError, Source, choose, config_part, interleave
from ftscale.runtime.internals.datasets import dataset_fingerprint

TASK_COLUMNS = {"source": "source", "target": "target"}
PRETRAIN_COLUMNS = {"text": "text"}


def describe(spec: dict) -> str:
    parts = [spec["dataset"]] + [f"{k} {spec[k]}" for k in ("config", "split", "revision") if spec.get(k)]
    return "dataset " + ", ".join(parts)


def is_saved(path: Path) -> bool:
    """A directory written by Dataset/DatasetDict.save_to_disk."""
    return path.is_dir() and any((path / name).exists() for name in ("dataset_dict.json", "state.json"))


def _offline_hint(spec: dict) -> str:
    name = spec["dataset"]
    return (
        f"pre-fetch it where there is network (`hf download {name} --repo-type dataset`, "
        f"or load it once with `datasets` to fill its cache, then set HF_DATASETS_OFFLINE=1 and "
        f"HF_HUB_OFFLINE=1 here), save it with save_to_disk and give that directory as `dataset`, "
        f"or switch to data.source: local"
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def open_dataset(spec: dict, streaming: bool = False, config_name: str | None = None):
    """The split a spec names, as a `datasets` Dataset (or IterableDataset when streaming)."""
    import datasets

    where = describe(spec)
    path = Path(spec["dataset"]).expanduser()
    if config_name is not None and (is_saved(path) or spec.get("data_files") is not None):
        # one table only: the "other config" would silently be these same rows
        raise DataError(
            f"{where}: target_config {config_name!r} needs a dataset with configurations "
            f"(a Hub id or a dataset directory whose README.md defines them), not "
            f"{'a save_to_disk directory' if is_saved(path) else 'data_files'}"
        )
    if is_saved(path):
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as error:  # noqa: BLE001 - any failure becomes one line
            raise DataError(f"{where}: cannot read the saved dataset: {_one_line(error)}") from None
        name, rows = split_slice(spec["split"], where)
        if isinstance(loaded, datasets.DatasetDict):
            if name not in loaded:
                raise DataError(f"{where}: no split {name!r} (splits: {list(loaded)})")
            loaded = loaded[name]
        if rows is not None:
            loaded = loaded.select(range(*rows.indices(len(loaded))))
        return loaded.to_iterable_dataset() if streaming else loaded
    local = path.exists() or spec.get("data_files") is not None
    kwargs = {"split": spec["split"], "streaming": streaming}
    for key in ("revision", "data_files"):
        if spec.get(key) is not None:
            kwargs[key] = spec[key]
    name = config_name or spec.get("config")
    try:
        return datasets.load_dataset(spec["dataset"], name, **kwargs)
    except Exception as error:  # noqa: BLE001 - network, missing dataset or bad files: one line
        if local:
            raise DataError(f"{where}: cannot load it: {_one_line(error)}") from None
        raise DataError(f"{where}: cannot load it ({_one_line(error)}); {_offline_hint(spec)}") from None


def split_slice(split: str, where: str) -> tuple[str, slice | None]:
    """`train[100:1000]` -> ("train", slice(100, 1000)), as `load_dataset` reads a split; for
    saved datasets, which `load_from_disk` opens whole. Percent slices only through the Hub."""
    match = re.fullmatch(r"(\w+)\[(-?\d*):(-?\d*)\]", split)
    if match:
        start, stop = (int(v) if v else None for v in match.group(2, 3))
        return match.group(1), slice(start, stop)
    if "[" in split:
        raise DataError(f"{where}: split {split!r}: a saved dataset takes row slices such as train[:1000]")
    return split, None


def field(row: dict, column: str, where: str):
    value = row
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            available = sorted(row) if isinstance(row, dict) else []
            raise DataError(f"{where}: no column {column!r} (columns: {available})")
        value = value[part]
    return value


class HFSource(Source):
    """Raw splits from the datasets of `data.hf`; records {"source", "target", "lang"}."""

    name, read_key = "hf", "datasets"  # the manifest lists the datasets read

    def rows(self, specs: list[dict], task: dict, split: str, n: int, seed: int) -> tuple[list[dict], str]:
        opened = []
        for spec in specs:
            dataset = open_dataset(spec)
            target = open_dataset(spec, config_name=spec["target_config"]) if spec.get("target_config") else None
            if target is not None and len(target) != len(dataset):
                raise DataError(
                    f"{describe(spec)}: target_config {spec['target_config']!r} has {len(target)} rows, "
                    f"not {len(dataset)}: they must align row by row"
                )
            opened.append((spec, dataset, target))
        total = sum(len(d) for _, d, _ in opened)
        where = " + ".join(describe(s) for s, _, _ in opened)
        keep = choose(total, n, seed, split, where)
        records, start = [], 0
        for spec, dataset, target in opened:
            rows = None if keep is None else [i - start for i in keep if start <= i < start + len(dataset)]
            columns = TASK_COLUMNS | spec.get("columns", {})
            used = 0
            chosen = dataset if keep is None else dataset.select(rows)
            targets = chosen if target is None else (target if keep is None else target.select(rows))
            for row, target_row in zip(chosen, targets):
                lang = (field(row, columns["lang"], describe(spec)) if columns.get("lang") else "") or spec.get(
                    "lang", ""
                )
                records.append(
                    {
                        "source": str(field(row, columns["source"], describe(spec))),
                        "target": str(field(target_row, columns["target"], describe(spec))),
                        "lang": str(lang or ""),
                    }
                )
                used += 1
            self.read.append(
                {
                    "dataset": spec["dataset"],
                    "config": spec.get("config"),
                    "split": spec["split"],
                    "revision": spec.get("revision"),
                    "target_config": spec.get("target_config"),
                    "fingerprint": dataset_fingerprint(dataset),
                    "rows_available": len(dataset),
                    "rows_used": used,
                }
            )
            start += len(dataset)
        return records, where

    def pretrain_lines(self, family: str, languages: list[str], split: str, skip: int, n_lines: int) -> Iterator[str]:
        """n_lines of each language after its first `skip` (val: a corpus's first lines, train: the
        lines after them), streamed, so only what is read is downloaded and held; languages alternate."""
        read = {lang: [] for lang in languages}  # what each language read, in the manifest in language order

        def language(lang: str) -> Iterator[str]:
            lines, to_skip = 0, skip  # each language skips its own val lines
            for spec in config_part(self.options, self.name, "pretrain", lang):
                if lines >= n_lines:
                    break
                dataset = open_dataset(spec, streaming=spec.get("streaming", True))
                column = (PRETRAIN_COLUMNS | spec.get("columns", {}))["text"]
                skipped = used = 0
                for row in dataset:
                    text = " ".join(str(field(row, column, describe(spec))).split())
                    if not text:
                        continue
                    if skipped < to_skip:  # the val lines (non-empty, as val counts them)
                        skipped += 1
                        continue
                    yield text
                    lines += 1
                    used += 1
                    if lines >= n_lines:
                        break
                read[lang].append(
                    {
                        "dataset": spec["dataset"],
                        "config": spec.get("config"),
                        "split": spec["split"],
                        "revision": spec.get("revision"),
                        "language": lang,
                        "lines_skipped": skipped,
                        "lines_used": used,
                    }
                )
                to_skip -= skipped
            if lines < n_lines:
                print(f"note: {lang}: only {lines} of {n_lines} {split} lines available")

        yield from interleave([language(lang) for lang in languages])
        self.read += [entry for lang in languages for entry in read[lang]]
