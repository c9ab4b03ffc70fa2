"""Facts the documents keep: the README stays a manual, every "(our choice)" in configs/ has its
row in docs/deviations.md, the Hugging Face command the hints name is installed, relative links
resolve, and the files and modules the documents name exist."""

import re
import subprocess
import sys
from pathlib import Path

from tests.documents import DOCUMENTS, ROOT

README_MAX_LINES = 400  # issue 22: the README is a manual of at most about 400 lines


def test_the_readme_is_a_manual_of_at_most_400_lines():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


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
    missing = [
        f"{path.relative_to(ROOT)}: {key}"
        for path in sorted((ROOT / "configs").glob("*.yaml"))
        for key in our_choices(path)
        if not re.search(rf"^\| {re.escape(str(path.relative_to(ROOT)))} \| `{re.escape(key)}` \|", table, re.M)
    ]
    assert our_choices(ROOT / "configs" / "paper.yaml"), "configs/paper.yaml marks no (our choice): the parser broke"
    assert not missing, "no row in docs/deviations.md for:\n" + "\n".join(missing)


HINTS = [ROOT / "src" / "ftscale", ROOT / "configs", ROOT / "docs", ROOT / "README.md"]


def test_download_hints_name_the_installed_hugging_face_command():
    """The pinned huggingface_hub installs `hf`, not `huggingface-cli`; every hint says `hf`, and
    `hf` takes the subcommands the hints name."""
    files = [
        p
        for root in HINTS
        for p in ([root] if root.is_file() else root.rglob("*"))
        if p.suffix in {".py", ".md", ".yaml"}
    ]
    stale = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "huggingface-cli" in line
    ]
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
        for path in re.findall(
            r"(?<![\w/.])((?:src|rules|scripts|bench|tests|configs|envs|schemas|profiles|slurm)/[\w./-]+\.\w+)", text
        ):
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
