"""The snippets of README.md, tests/README.md and docs/, and how each kind is checked
(tests/unit/test_docs_snippets.py runs them; tests/README.md explains the markers).

Each fenced block is marked by an HTML comment on the line before it, `<!-- snippet: KIND ... -->`.
The snippets of one document run in its order, in a sandbox copy of the repository, as a new user
would follow them: a YAML snippet that edits a config saves the file the next shell snippet reads.
Cheap commands run for real (`ftscale grid`, `snakemake -n`); expensive ones run dry (`make -n`,
`snakemake -n`) or are only parsed, with the reason in the marker.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "tests" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL, YAML = {"bash", "sh", "shell"}, {"yaml", "yml"}
KINDS = {"run", "dry", "parse", "config", "output"}
MARKER = re.compile(r"^<!-- snippet: (?P<kind>[a-z]+)(?P<rest>.*?) -->$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_-]*)\s*$")


@dataclass
class Snippet:
    document: Path
    line: int  # of the opening fence, 1-based
    lang: str
    kind: str | None
    options: dict = field(default_factory=dict)
    reason: str = ""
    text: str = ""

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def parse_marker(rest: str) -> tuple[dict, str]:
    """` base=x replace=a,b files (why)` -> ({base: x, replace: a,b, files: True}, why)."""
    reason = ""
    if "(" in rest:
        rest, reason = rest.split("(", 1)
        reason = reason.rsplit(")", 1)[0].strip()
    options = {}
    for token in shlex.split(rest):
        key, _, value = token.partition("=")
        options[key] = value if value else True
    return options, reason


def snippets(document: Path) -> list[Snippet]:
    found, lines, i = [], document.read_text().splitlines(), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        marker = MARKER.match(lines[i - 1]) if i else None
        snippet = Snippet(document, i + 1, fence["lang"], marker["kind"] if marker else None)
        if marker:
            snippet.options, snippet.reason = parse_marker(marker["rest"])
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        snippet.text = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(snippet)
        i = end + 1
    return found


def sandbox(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the repository (no results, no .snakemake), its .venv the one running the tests."""
    box = tmp_path / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info", ".pytest_cache"
    )
    shutil.copytree(ROOT, box, ignore=ignore, symlinks=True)
    venv = ROOT / ".venv" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.prefix)
    (box / ".venv").symlink_to(venv)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(box / "src"), os.environ.get("PYTHONPATH", "")]),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        FTSCALE_WORKER="0",
    )
    return box, env


def run(command, box: Path, env: dict, snippet: Snippet, timeout: int = 300) -> str:
    shell = isinstance(command, str)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command] if shell else command,
        cwd=box,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    shown = command if shell else shlex.join(command)
    assert result.returncode == 0, (
        f"{snippet}: `{shown.strip()}` exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}"
    )
    return result.stdout


def commands(text: str) -> list[list[str]]:
    """The block's commands, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [tokens for line in joined.splitlines() if (tokens := shlex.split(line, comments=True))]


def split_assignments(tokens: list[str]) -> tuple[dict, list[str]]:
    assigned = {}
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):
        key, _, value = tokens[0].partition("=")
        assigned[key], tokens = value, tokens[1:]
    return assigned, tokens


def parse_ftscale(arguments: list[str], snippet: Snippet) -> None:
    """The subcommand's own argparse accepts the arguments (`run` passes everything to Snakemake)."""
    from ftscale.cli import SUBCOMMANDS

    name, rest = arguments[0], arguments[1:]
    assert name in SUBCOMMANDS, f"{snippet}: no ftscale subcommand {name!r} ({sorted(SUBCOMMANDS)})"
    if name == "run":
        return
    parser = argparse.ArgumentParser(prog=f"ftscale {name}", exit_on_error=False)
    SUBCOMMANDS[name][0](parser)
    try:
        parser.parse_args(rest)
    except (argparse.ArgumentError, SystemExit) as error:
        pytest.fail(f"{snippet}: ftscale {shlex.join(arguments)}: {error}")


def check_exists(program: str, box: Path, snippet: Snippet) -> None:
    if "/" in program:
        assert (box / program).exists(), f"{snippet}: {program} does not exist"
    else:
        assert shutil.which(program) or program in {"export", "cd", "cp", "printf"}, (
            f"{snippet}: no command {program!r}"
        )


def check_parse(snippet: Snippet, box: Path, env: dict) -> None:
    run(["bash", "-n", "-c", snippet.text], box, env, snippet)
    for tokens in commands(snippet.text):
        _, tokens = split_assignments(tokens)
        if tokens[0] == "export":
            continue
        check_exists(tokens[0], box, snippet)
        if tokens[0].endswith("ftscale"):
            parse_ftscale(tokens[1:], snippet)


def check_dry(snippet: Snippet, box: Path, env: dict) -> None:
    """make as `make -n`, snakemake with -n, both for real; ftscale parsed; exports kept for the rest."""
    env = dict(env)
    run(["bash", "-n", "-c", snippet.text], box, env, snippet)
    for tokens in commands(snippet.text):
        assigned, tokens = split_assignments(tokens)
        if tokens[0] == "export":
            env.update(split_assignments(tokens[1:])[0])
            continue
        check_exists(tokens[0], box, snippet)
        if tokens[0] == "make":
            run(["make", "-n", *tokens[1:]], box, env | assigned, snippet)
        elif tokens[0].endswith("snakemake"):
            run(tokens + ([] if "-n" in tokens or "--dry-run" in tokens else ["-n"]), box, env | assigned, snippet)
        elif tokens[0].endswith("ftscale"):
            parse_ftscale(tokens[1:], snippet)


# --- config snippets ---------------------------------------------------------------------------


def merged(base: dict, edit: dict, replace: set, drop: set) -> dict:
    """The edit applied as the document tells a user: keys in `replace` (dotted paths) and scalars
    replaced whole, other mappings merged key by key, top-level keys in `drop` deleted."""

    def merge(into: dict, update: dict, prefix: str) -> dict:
        for key, value in update.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(into.get(key), dict) and path not in replace:
                merge(into[key], value, f"{path}.")
            else:
                into[key] = copy.deepcopy(value)
        return into

    config = merge(copy.deepcopy(base), edit, "")
    for key in drop:
        config.pop(key, None)
    return config


def stand_in_files(config: dict, box: Path) -> None:
    """A few records in each file `data.local` names, in the format its name says: the user's data."""
    import pandas as pd

    local = config["data"].get("local", {})
    specs = [s for part in ("pretrain",) for s in local.get(part, {}).values()]
    specs += [s for splits in local.get("tasks", {}).values() for s in splits.values()]
    specs += [s for langs in local.get("zero_shot", {}).values() for s in langs.values()]
    for spec in [x for s in specs for x in (s if isinstance(s, list) else [s])]:
        if "source" in spec:
            for side, word in (("source", "house"), ("target", "Haus")):
                path = box / spec[side]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"the {word} {i}\n" for i in range(20)))
            continue
        columns = {"source": "source", "target": "target", **spec.get("columns", {})}
        rows = pd.DataFrame(
            {
                columns["source"]: [f"the house {i}" for i in range(20)],
                columns["target"]: [f"das Haus {i}" for i in range(20)],
            }
        )
        for name in spec["path"] if isinstance(spec["path"], list) else [spec["path"]]:
            path = box / name
            path.parent.mkdir(parents=True, exist_ok=True)
            suffix = spec.get("format") or path.suffix.lstrip(".")
            if suffix in ("jsonl", "json"):
                rows.to_json(path, orient="records", lines=True, force_ascii=False)
            elif suffix == "parquet":
                rows.to_parquet(path)
            elif suffix in ("csv", "tsv"):
                rows.to_csv(path, index=False, sep="\t" if suffix == "tsv" else ",")
            else:
                path.write_text("".join(f"a document of plain text, number {i}.\n" for i in range(20)))


def check_config(snippet: Snippet, box: Path, env: dict) -> None:
    """(env unused: every check takes the same three arguments.)"""
    from ftscale.config import ConfigError, validate

    edit = yaml.safe_load(snippet.text)
    base = snippet.options.get("base")
    config = edit
    if base:
        config = merged(
            yaml.safe_load((box / base).read_text()),
            edit,
            set(filter(None, str(snippet.options.get("replace", "")).split(","))),
            set(filter(None, str(snippet.options.get("drop", "")).split(","))),
        )
    try:
        validate(copy.deepcopy(config))
    except ConfigError as error:
        pytest.fail(f"{snippet}: Config error: {error}")
    if snippet.options.get("save"):
        (box / snippet.options["save"]).write_text(yaml.safe_dump(config, sort_keys=False))
    if snippet.options.get("files"):
        stand_in_files(config, box)


# --- what a snippet needs before it runs ------------------------------------------------------


def toy_metrics_mean(box: Path) -> None:
    """results/toy/metrics_mean.csv as a finished toy run writes it, its losses drawn from known laws."""
    from ftscale.analysis.aggregate import mean_over_seeds
    from tests.synthetic_study import synthetic_metrics

    path = box / "results" / "toy" / "metrics_mean.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    mean_over_seeds(synthetic_metrics()).to_csv(path, index=False)


GIVEN = {"results/toy/metrics_mean.csv": toy_metrics_mean}


def check_output(snippet: Snippet, box: Path, env: dict) -> None:
    printed = {line.rstrip() for line in run(snippet.options["of"], box, env, snippet).splitlines()}
    missing = [line for line in snippet.text.splitlines() if line.strip() and line.rstrip() not in printed]
    assert not missing, f"{snippet}: not in the output of `{snippet.options['of']}`:\n" + "\n".join(missing)


def run_block(snippet: Snippet, box: Path, env: dict) -> None:
    run(snippet.text, box, env, snippet)


CHECKS = {"config": check_config, "run": run_block, "dry": check_dry, "parse": check_parse, "output": check_output}
