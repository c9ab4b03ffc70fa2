"""`ftscale score --samples`: a run's samples.jsonl (ftscale.evaluate.samples) scored as --hyp/--ref
would be, its language from the records; bad input exits 2 with one line. (The samples of a real
evaluation, re-scored to its eval.json: tests/workflow/test_status.py.)"""

import json

import pytest

from ftscale import cli
from ftscale.evaluate import samples

HYP = ["Das Haus ist klein.", "Der Hund schläft.", "Ich mag Äpfel."]
REF = ["Das Haus ist klein.", "Der Hund schläft gern.", "Ich esse Äpfel."]


def scores(tmp_path, *args) -> dict:
    out = tmp_path / "scores.json"
    assert cli.main(["score", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_samples_of_a_run_score_as_its_lines(tmp_path):
    samples.write(tmp_path / samples.SAMPLES, HYP, REF, ["de"] * 3)
    (tmp_path / "hyp.txt").write_text("\n".join(HYP) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(REF) + "\n")
    from_lines = scores(
        tmp_path, "--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"), "--lang", "de"
    )
    assert scores(tmp_path, "--samples", str(tmp_path)) == from_lines  # the run directory: lang from the records
    assert scores(tmp_path, "--samples", str(tmp_path / samples.SAMPLES))["lang"] == "de"
    assert "|tok:zh|" in scores(tmp_path, "--samples", str(tmp_path), "--lang", "zh")["signature"]


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, [], "samples.jsonl: no such file"),
        (
            '{"hypothesis": "a", "reference": "b"}\n{"hypothesis": "a"}\n',
            [],
            "samples.jsonl, line 2: not a sample record",
        ),
        ("", [], "no samples (a diverged run has none)"),
        ('{"hypothesis": "a", "reference": "b"}\n', ["--hyp", "h.txt"], "--samples replaces --hyp and --ref"),
    ],
)
def test_bad_samples_exit_2_with_one_line(tmp_path, capsys, content, args, message):
    if content is not None:
        (tmp_path / samples.SAMPLES).write_text(content)
    assert cli.main(["score", "--samples", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_neither_samples_nor_lines_exits_2(capsys):
    assert cli.main(["score", "--hyp", "h.txt"]) == 2
    assert "give --hyp, --ref and --lang, or --samples" in capsys.readouterr().err
