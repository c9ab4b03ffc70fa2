"""Sealed output directories: a file that a full disk or a power loss cut short is never read as valid.

The job that writes a directory (a token array, a base checkpoint, a finetuned checkpoint) seals it
last: every file is flushed to disk, then MANIFEST.json (each file's size and sha256) is written
atomically beside them. The hashes are computed once, by that job. A reader checks the directory
against its manifest (every file there, of its sealed size) before loading anything and stops with
one line naming the file that differs; it does not hash: 64 ranks each hashing a 566 GB token
stream or a 60 GB checkpoint would spend their start on it. `verify` recomputes the hashes (a
disk suspected of corrupting data in place). `ftscale run` checks the sizes of every sealed
directory before Snakemake starts and removes the damaged ones, so Snakemake rebuilds them and what
depends on them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A sealed directory does not match its manifest; str() is the one line to show."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(directory: str | Path) -> dict:
    """Write the directory's manifest, after its files are on disk; returns the manifest."""
    directory = Path(directory)
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        _fsync(path)
        files[path.relative_to(directory).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
    manifest = {"files": files}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    _fsync(tmp)
    os.replace(tmp, directory / MANIFEST)
    _fsync(directory)  # the rename itself survives a power loss
    return manifest


def problem(directory: str | Path, hashes: bool = True) -> str | None:
    """Why the directory does not match its manifest (None when it does). Sizes only with hashes=False."""
    directory = Path(directory)
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return f"{directory}: no {MANIFEST} (its job did not finish, or an older ftscale wrote it)"
    except (ValueError, KeyError, TypeError):
        return f"{directory / MANIFEST}: unreadable (cut short?)"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"{path}: missing"
        size = path.stat().st_size
        if size != expected["bytes"]:
            return f"{path}: {size} bytes, {expected['bytes']} when written (truncated?)"
        if hashes and sha256(path) != expected["sha256"]:
            return f"{path}: sha256 differs from when it was written (corrupted)"
    return None


def check(directory: str | Path, hashes: bool = False) -> None:
    """Raise IntegrityError (one line naming the file) unless the directory matches its manifest: sizes
    (what a reader checks), with hashes=True also the sha256 of every file (verify)."""
    reason = problem(directory, hashes=hashes)
    if reason:
        raise IntegrityError(f"Damaged output {reason}; delete {directory} and run again to rebuild it")


def verify(directory: str | Path) -> None:
    """check() with the hashes recomputed."""
    check(directory, hashes=True)


def damaged(root: str | Path) -> list[tuple[Path, str]]:
    """Sealed directories under root whose files no longer have their sealed sizes (cheap: no hashing)."""
    found = []
    for manifest in sorted(Path(root).rglob(MANIFEST)):
        reason = problem(manifest.parent, hashes=False)
        if reason:
            found.append((manifest.parent, reason))
    return found
