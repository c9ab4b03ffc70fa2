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


def read(path: str | Path) -> tuple[list[str], list[str], list[str | None]]:
    """(hypotheses, references, langs) of a samples file, or of the run directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / SAMPLES
    hypotheses, references, langs = [], [], []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                    hypotheses.append(record["hypothesis"])
                    references.append(record["reference"])
                    langs.append(record.get("lang"))
                except (ValueError, KeyError, TypeError) as error:
                    raise SamplesError(f"{path}, line {number}: not a sample record ({error})")
    except FileNotFoundError:
        raise SamplesError(f"{path}: no such file (runs evaluated before samples were kept have none)")
    except UnicodeDecodeError as error:
        raise SamplesError(f"{path}: not UTF-8 text (byte {error.start})")
    except OSError as error:
        raise SamplesError(f"{path}: {error.strerror}")
    return hypotheses, references, langs
