"""The `local` source: raw splits from the user's own files, as named in the config (`data.local`).

A file spec (the config's `data.local.tasks.<task>.<split>`, `data.local.pretrain.<lang>`,
`data.local.zero_shot.<task>.<lang>`; a list of specs is concatenated):

    path:    a file, or a list of files read one after another; relative paths are relative to
             the directory Snakemake runs in
    format:  jsonl | parquet | csv | tsv | text; by default from the extension (.jsonl/.json,
             .parquet, .csv, .tsv; anything else is text)
    columns: the column names to read, {source, target, lang} for tasks ({text} for pretraining);
             the defaults are source, target, lang and text
    lang:    the records' language when no column holds it

or a Moses-style parallel pair of plain-text files, line i of one translating line i of the other:

    source: train.en
    target: train.de
    lang:   en

Pretraining text is a plain-text file of one document per line (or jsonl/parquet/csv with a
`text` column). Every problem (missing file, empty file, bytes that are not UTF-8, a missing
column, unequal line counts of a pair) is a DataError naming the file.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

from ftscale.data.common import (
    DataError,
    Source,
    as_list,
    choose,
    config_part,
    interleave,
    sha256,
    spec_files,
    text_lines,
)

FORMATS = ("jsonl", "parquet", "csv", "tsv", "text")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".csv": "csv", ".tsv": "tsv"}


def file_format(path: Path, spec: dict) -> str:
    fmt = spec.get("format") or EXTENSIONS.get(path.suffix.lower(), "text")
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {fmt!r} (one of {list(FORMATS)})")
    return fmt


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")


def _text(path: Path) -> str:
    _check_file(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (undecodable byte at offset {error.start})") from None


def stream_lines(path: Path) -> Iterator[str]:
    """A text file's lines with their whitespace collapsed (a leading BOM dropped), read as they come."""
    _check_file(path)
    for number, line in enumerate(text_lines(path)):
        yield " ".join((line[1:] if number == 0 and line.startswith("\ufeff") else line).split())


def read_lines(path: Path, keep_empty: bool) -> list[str]:
    return [line for line in stream_lines(path) if keep_empty or line]


def read_rows(path: Path, fmt: str, columns: list[str], optional: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a table file as dicts holding at least `columns` (a missing one is an error), and
    the `optional` columns the file has."""
    if fmt == "parquet":
        _check_file(path)
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as error:  # noqa: BLE001 - corrupt or not parquet
            raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(error).split())[:200]})") from None
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (columns: {table.column_names})")
        if table.num_rows == 0:
            raise DataError(f"{path}: no rows")
        extra = [c for c in optional if c in table.column_names and c not in columns]
        return table.select(columns + extra).to_pylist()
    text = _text(path).lstrip("\ufeff")
    if fmt == "jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object")
            missing = [c for c in columns if c not in row]
            if missing:
                raise DataError(f"{path}: line {number} has no column {missing[0]!r} (columns: {sorted(row)})")
            rows.append(row)
        if not rows:
            raise DataError(f"{path}: empty file (no records)")
        return rows
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(text.splitlines(), delimiter="," if fmt == "csv" else "\t")
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r} (header: {header})")
        rows = list(reader)
        if not rows:
            raise DataError(f"{path}: no rows below the header")
        return rows
    raise DataError(f"{path}: format {fmt!r} has no columns (use jsonl, parquet, csv or tsv, or a source/target pair)")


def spec_records(spec: dict) -> list[dict]:
    """Records {"source", "target", "lang"} of one spec."""
    if "path" not in spec:
        source, target = Path(spec["source"]).expanduser(), Path(spec["target"]).expanduser()
        src, tgt = read_lines(source, keep_empty=True), read_lines(target, keep_empty=True)
        if len(src) != len(tgt):
            raise DataError(
                f"{source}: {len(src)} lines but its pair {target} has {len(tgt)}: "
                f"a parallel pair must align line by line"
            )
        return [{"source": s, "target": t, "lang": spec.get("lang", "")} for s, t in zip(src, tgt) if s and t]
    names = {"source": "source", "target": "target"} | spec.get("columns", {})
    records = []
    for path in as_list(spec["path"]):
        path = Path(path).expanduser()
        fmt = file_format(path, spec)
        wanted = [names["source"], names["target"]] + ([names["lang"]] if "lang" in names else [])
        lang_column = names.get("lang", "lang")  # a configured one must exist; the default may not
        rows = read_rows(path, fmt, wanted, optional=(lang_column,))
        for row in rows:
            lang = row.get(lang_column) if lang_column else None
            records.append(
                {
                    "source": str(row[names["source"]]),
                    "target": str(row[names["target"]]),
                    "lang": str(lang if lang not in (None, "") else spec.get("lang", "")),
                }
            )
    return records


def spec_texts(spec: dict) -> Iterator[str]:
    """Pretraining lines of one spec (empty ones dropped): a text file's as they are read, a table's
    a file at a time."""
    for path in as_list(spec["path"]):
        path = Path(path).expanduser()
        fmt = file_format(path, spec)
        if fmt == "text":
            yield from (line for line in stream_lines(path) if line)
        else:
            column = ({"text": "text"} | spec.get("columns", {}))["text"]
            yield from (t for t in (" ".join(str(r[column]).split()) for r in read_rows(path, fmt, [column])) if t)


class LocalSource(Source):
    """Raw splits from the files of `data.local`; records {"source", "target", "lang"}."""

    name, read_key = "local", "files_read"  # the manifest lists the files read, with their sha256

    def rows(self, specs: list[dict], task: dict, split: str, n: int, seed: int) -> tuple[list[dict], str]:
        records = []
        for spec in specs:
            got = spec_records(spec)
            self.read.append(
                {
                    "files": spec_files(spec),
                    "rows": len(got),
                    "sha256": [sha256(Path(f).expanduser()) for f in spec_files(spec)],
                }
            )
            records += got
        label = " + ".join(f for spec in specs for f in spec_files(spec))
        keep = choose(len(records), n, seed, split, label)
        if keep is not None:
            records = [records[i] for i in keep]
        return records, label

    def pretrain_lines(self, family: str, languages: list[str], split: str, skip: int, n_lines: int) -> Iterator[str]:
        """n_lines of each language after its first `skip` (val: a corpus's first lines, train: the
        lines after them), read as they are written; languages alternate."""
        read = {lang: [] for lang in languages}  # the files each language read, in language order

        def corpus(lang: str) -> Iterator[str]:
            for spec in config_part(self.options, self.name, "pretrain", lang):
                read[lang].append(
                    {
                        "files": spec_files(spec),
                        "language": lang,
                        "sha256": [sha256(Path(f).expanduser()) for f in spec_files(spec)],
                    }
                )
                yield from spec_texts(spec)

        def language(lang: str) -> Iterator[str]:
            chosen = 0
            for line in itertools.islice(corpus(lang), skip, skip + n_lines):
                chosen += 1
                yield line
            if chosen < n_lines:
                print(f"note: {lang}: only {chosen} of {n_lines} {split} lines available")

        yield from interleave([language(lang) for lang in languages])
        self.read += [entry for lang in languages for entry in read[lang]]
