"""Every shell and YAML snippet in README.md, tests/README.md and docs/ works as written.

Each fenced block is marked by an HTML comment on the line before it, `<!-- snippet: KIND ... -->`
(tests/README.md explains the kinds). The snippets of one document run in its order, in a sandbox
copy of the repository, as a new user would follow them: a YAML snippet that edits a config saves
the file the next shell snippet reads. Cheap commands run for real (`ftscale grid`, `snakemake -n`);
expensive ones run dry (`make -n`, `snakemake -n`) or are only parsed, with the reason in the marker.
Beside them: every "(our choice)" in configs/ has its row in docs/deviations.md, the Hugging Face
command the error messages name is installed, and relative links resolve.
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

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "tests" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL, YAML = {"bash", "sh", "shell"}, {"yaml", "yml"}
KINDS = {"run", "dry", "parse", "config", "output"}
MARKER = re.compile(r"^<!-- snippet: (?P<kind>[a-z]+)(?P<rest>.*?) -->$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_-]*)\s*$")
README_MAX_LINES = 400          # issue 22: the README is a manual of at most about 400 lines


@dataclass
class Snippet:
    document: Path
    line: int                    # of the opening fence, 1-based
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
        snippet.text = "\n".join(lines[i + 1:end]) + "\n"
        found.append(snippet)
        i = end + 1
    return found


def test_every_snippet_is_marked():
    problems = []
    for document in DOCUMENTS:
        for snippet in snippets(document):
            if not snippet.lang:
                problems.append(f"{snippet}: a fence without a language (```text for output)")
            elif snippet.lang in SHELL | YAML and snippet.kind not in KINDS:
                problems.append(f"{snippet}: {snippet.lang} block without a <!-- snippet: KIND --> marker")
            elif snippet.lang in YAML and snippet.kind != "config":
                problems.append(f"{snippet}: a YAML snippet is a config snippet")
            elif snippet.kind == "parse" and not snippet.reason:
                problems.append(f"{snippet}: a parse-only snippet says why it does not run, in (...)")
        text = document.read_text().splitlines()
        for n, line in enumerate(text):
            if MARKER.match(line) and not (n + 1 < len(text) and FENCE.match(text[n + 1])):
                problems.append(f"{document.relative_to(ROOT)}:{n + 1}: a marker not followed by a fence")
    assert not problems, "\n".join(problems)


def test_the_readme_is_a_manual_of_at_most_400_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


# --- the sandbox a document's snippets run in ------------------------------------------------

def sandbox(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the repository (no results, no .snakemake), its .venv the one running the tests."""
    box = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                                    ".pytest_cache")
    shutil.copytree(ROOT, box, ignore=ignore, symlinks=True)
    venv = ROOT / ".venv" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.prefix)
    (box / ".venv").symlink_to(venv)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(box / "src"), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", FTSCALE_WORKER="0")
    return box, env


def run(command, box: Path, env: dict, snippet: Snippet, timeout: int = 300) -> str:
    shell = isinstance(command, str)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", command] if shell else command, cwd=box, env=env,
                            capture_output=True, text=True, timeout=timeout)
    shown = command if shell else shlex.join(command)
    assert result.returncode == 0, (f"{snippet}: `{shown.strip()}` exited {result.returncode}:\n"
                                    f"{(result.stdout + result.stderr)[-3000:]}")
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
        assert shutil.which(program) or program in {"export", "cd", "cp", "printf"}, f"{snippet}: no command {program!r}"


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
        rows = pd.DataFrame({columns["source"]: [f"the house {i}" for i in range(20)],
                             columns["target"]: [f"das Haus {i}" for i in range(20)]})
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


def check_config(snippet: Snippet, box: Path) -> None:
    from ftscale.config import ConfigError, validate

    edit = yaml.safe_load(snippet.text)
    base = snippet.options.get("base")
    config = edit
    if base:
        config = merged(yaml.safe_load((box / base).read_text()), edit,
                        set(filter(None, str(snippet.options.get("replace", "")).split(","))),
                        set(filter(None, str(snippet.options.get("drop", "")).split(","))))
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


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_snippets_of_a_document_work_in_order(document, tmp_path):
    marked = [s for s in snippets(document) if s.kind in KINDS]
    if not marked:
        return
    box, env = sandbox(tmp_path)
    for snippet in marked:
        given = snippet.options.get("given")
        if given:
            GIVEN[given](box)
        if snippet.kind == "config":
            check_config(snippet, box)
        elif snippet.kind == "run":
            run(snippet.text, box, env, snippet)
        elif snippet.kind == "dry":
            check_dry(snippet, box, env)
        elif snippet.kind == "parse":
            check_parse(snippet, box, env)
        elif snippet.kind == "output":
            check_output(snippet, box, env)


# --- facts the documents must keep -------------------------------------------------------------

def our_choices(path: Path) -> list[str]:
    """Dotted key paths of the lines whose comment says "(our choice"."""
    found, stack = [], []
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z0-9_.]+):", line)
        if not match:
            continue
        indent = len(match[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match[2]))
        if "(our choice" in line.partition("#")[2]:
            found.append(".".join(key for _, key in stack))
    return found


def test_every_our_choice_has_a_row_in_the_deviations_table():
    table = (ROOT / "docs" / "deviations.md").read_text()
    missing = [f"{path.relative_to(ROOT)}: {key}" for path in sorted((ROOT / "configs").glob("*.yaml"))
               for key in our_choices(path)
               if not re.search(rf"^\| {re.escape(str(path.relative_to(ROOT)))} \| `{re.escape(key)}` \|", table, re.M)]
    assert our_choices(ROOT / "configs" / "paper.yaml"), "configs/paper.yaml marks no (our choice): the parser broke"
    assert not missing, "no row in docs/deviations.md for:\n" + "\n".join(missing)


HINTS = [ROOT / "src" / "ftscale", ROOT / "configs", ROOT / "docs", ROOT / "README.md"]


def test_download_hints_name_the_installed_hugging_face_command():
    """The pinned huggingface_hub installs `hf`, not `huggingface-cli`; every hint says `hf`, and
    `hf` takes the subcommands the hints name."""
    files = [p for root in HINTS for p in ([root] if root.is_file() else root.rglob("*")) if p.suffix in {".py", ".md", ".yaml"}]
    stale = [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
             if "huggingface-cli" in line]
    assert not stale, "huggingface-cli is not installed by the pinned huggingface_hub; say `hf`:\n" + "\n".join(stale)
    hf = Path(sys.executable).parent / "hf"
    assert hf.exists(), f"{hf}: the console script the hints name is not installed"
    named = {tuple(m.split()) for p in files for m in re.findall(r"\bhf (download|auth login)\b", p.read_text())}
    assert ("download",) in named
    for words in sorted(named) + [("auth", "login")]:
        result = subprocess.run([str(hf), *words, "--help"], capture_output=True, text=True)
        assert result.returncode == 0, f"hf {' '.join(words)}: {result.stderr[-500:]}"


def anchors(document: Path) -> set[str]:
    """GitHub's anchors of a document's headings."""
    slugs = set()
    for line in document.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def test_relative_links_resolve():
    broken = []
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if re.match(r"^[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{document.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_named_files_and_modules_exist():
    """Paths like `src/ftscale/plan/grid.py`, `rules/fetch.smk`, `bench/bench_grid.py` and modules
    like `ftscale.runtime.faults` name what is in the tree (modules moved in commit 6fbece1)."""
    missing = []
    for document in DOCUMENTS:
        text = document.read_text()
        for path in re.findall(r"(?<![\w/.])((?:src|rules|scripts|bench|tests|configs|envs|schemas|profiles|slurm)/[\w./-]+\.\w+)",
                               text):
            if not (ROOT / path).exists():
                missing.append(f"{document.relative_to(ROOT)}: {path}")
        for dotted in re.findall(r"\bftscale(?:\.\w+)+", text):
            parts = dotted.split(".")
            # the longest importable prefix is a module or package; what follows it is a name in it
            for n in range(len(parts), 0, -1):
                base = ROOT / "src" / Path(*parts[:n])
                if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
                    break
            else:
                n = 0
            if n < 2 or len(parts) - n > 1:
                missing.append(f"{document.relative_to(ROOT)}: {dotted}")
    assert not missing, "\n".join(missing)
