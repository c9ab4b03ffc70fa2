"""Every generation of an evaluation, kept beside its eval.json (as lm-eval-harness's --log_samples):
samples.jsonl, one test example a line, in test-set order:

    {"index": 0, "hypothesis": "...", "reference": "...", "lang": "de"}

`lang` is the target language of a translation task, each reference's own for summarization (as
the metrics take them: ftscale.evaluate.metrics). `ftscale score --samples` re-scores a run from
it. Written under a temporary name, flushed, then renamed: a cut-short file never looks complete.
No torch here: the CLI reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SAMPLES = "samples.jsonl"


def write(path: str | Path, hypotheses: list[str], references: list[str], langs: list[str | None]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as out:
        for index, (hypothesis, reference, lang) in enumerate(zip(hypotheses, references, langs, strict=True)):
            record = {"index": index, "hypothesis": hypothesis, "reference": reference, "lang": lang}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class SamplesError(ValueError):
    """A samples file that cannot be read; str() is the one line to show."""


def file_of(path: str | Path) -> Path:
    """The samples file itself, or the one in a run directory."""
    return Path(path) / SAMPLES if Path(path).is_dir() else Path(path)


def parse(lines: list[str], name: str | Path) -> tuple[list[str], list[str], list[str | None]]:
    """(hypotheses, references, langs) of a samples file's lines; `name` is for the error line."""
    hypotheses, references, langs = [], [], []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            hypotheses.append(record["hypothesis"])
            references.append(record["reference"])
            langs.append(record.get("lang"))
        except (ValueError, KeyError, TypeError) as error:
            raise SamplesError(f"{name}, line {number}: not a sample record ({error})")
    return hypotheses, references, langs


def read(path: str | Path) -> tuple[list[str], list[str], list[str | None]]:
    """parse() of a samples file, or of the one in a run directory."""
    path = file_of(path)
    return parse(path.read_text(encoding="utf-8").splitlines(), path)
