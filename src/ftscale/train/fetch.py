"""Fetching a hub family's base checkpoint (rules/fetch.smk): a Hub model is downloaded once into
the Hugging Face cache (`snapshot_download`, at its pinned revision); a local save_pretrained
directory is used where it is. Either way the job writes a small sealed directory at the base
checkpoint's usual place (results/<study>/pretrain/<family>/<model>-<tokens>tok) holding:

- hub.json (hub.POINTER): the directory to load from, the Hub id and revision with the commit sha
  the revision resolved to, or for a local directory a sha256 over its files;
- pretrain.json: parameters (counted from the model's config, built on the meta device: no weights
  are read), tokens seen, status `hub` (no pretraining losses of ours).
ftscale.train.model.load_model follows hub.json. A learned metric's checkpoint (BLEURT:
evaluate.bleurt) is fetched the same way, into a pointer directory holding hub.json alone
(fetch_scorer; ftscale.evaluate.bleurt reads it). Without network, a model not in the cache stops the job
with one line naming it and how to pre-fetch it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ftscale.plan import hub
from ftscale.runtime import integrity

# What a base model needs: configs, tokenizer files, weights. safetensors where the revision has
# them, else pickled .bin (early Pythia revisions): never both (12B twice over).
METADATA_PATTERNS = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.py"]


class FetchError(RuntimeError):
    """A base model that cannot be had; str() is the one line to show."""


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def prefetch_hint(repo: str, revision: str) -> str:
    return (
        f"pre-fetch it where there is network with `hf download {repo} --revision {revision}` "
        f"(the same HF_HOME as this run), then run again"
    )


def download(repo: str, revision: str, cache_dir: str | None = None) -> Path:
    """The snapshot directory of repo at revision, downloaded unless cached; offline (HF_HUB_OFFLINE)
    only the cache is read."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    def get(patterns):
        return Path(
            snapshot_download(
                repo, revision=revision, allow_patterns=patterns, cache_dir=cache_dir, local_files_only=offline()
            )
        )

    try:
        snapshot = get(METADATA_PATTERNS + ["*.safetensors"])
        if not any(snapshot.glob("*.safetensors")):
            snapshot = get(METADATA_PATTERNS + ["*.bin"])
    except LocalEntryNotFoundError:
        why = "the Hub is offline (HF_HUB_OFFLINE)" if offline() else "the Hub cannot be reached"
        raise FetchError(
            f"{repo}@{revision} is not in the Hugging Face cache and {why}: {prefetch_hint(repo, revision)}"
        ) from None
    except RevisionNotFoundError:
        raise FetchError(f"{repo}: no revision {revision!r} on the Hub") from None
    except RepositoryNotFoundError:
        raise FetchError(f"{repo}: no such model on the Hub (or it is gated: log in with `hf auth login`)") from None
    return snapshot


def directory_sha256(directory: Path) -> str:
    """One digest of a directory's files (names and contents): what a local base model is recorded by."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(directory).as_posix()}\0{integrity.sha256(path)}\n".encode())
    return digest.hexdigest()


def count_parameters(directory: Path) -> int:
    """Parameters of the model a directory holds, from its config: built on the meta device (no
    memory, no weights read); tied embeddings count once."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(directory)))
    return sum(p.numel() for p in model.parameters())


def locate(repo: str | None = None, revision: str | None = None, directory: str | None = None) -> dict:
    """hub.json's record of a Hub repo at revision (downloaded unless cached) or of a local
    save_pretrained directory: `path` to load from, and what it is (repo, revision, commit sha;
    or directory and a sha256 over its files)."""
    if directory:
        path = Path(directory).resolve()
        if not (path / "config.json").is_file():
            raise FetchError(f"{directory}: not a save_pretrained directory (no config.json)")
        return {"path": str(path), "directory": directory, "sha256": directory_sha256(path)}
    path = download(repo, revision)
    return {"path": str(path), "repo": repo, "revision": revision, "sha": path.name}  # snapshots/<commit sha>


def write_sealed(out_dir: Path, files: dict[str, dict]) -> None:
    """out_dir holding `files` (name -> JSON record), sealed; written beside it and renamed into
    place, so a cut-short job never leaves one looking complete."""
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, record in files.items():
        (partial / name).write_text(json.dumps(record, indent=1))
    integrity.seal(partial)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)


def fetch(
    *,
    family: str,
    model: str,
    tokens: int,
    out_dir: Path,
    repo: str | None = None,
    revision: str | None = None,
    directory: str | None = None,
) -> dict:
    """Fetch one base checkpoint (a Hub repo at revision, or a local directory) and write its
    sealed pointer directory `out_dir`. Returns hub.json's record."""
    record = locate(repo, revision, directory)
    path = Path(record["path"])
    summary = {
        "family": family,
        "model": model,
        "params": count_parameters(path),
        "tokens": tokens,
        "status": "hub",
        "train_loss": None,
        "val_loss": None,
        "steps": None,
        "train_seconds": 0.0,
        "source": record.get("repo") or record["directory"],
    }
    write_sealed(out_dir, {hub.POINTER: record, "pretrain.json": summary})
    print(f"{family}/{model} ({tokens:,} tokens): {summary['source']} -> {path}, {summary['params']:,} parameters")
    return record


def fetch_scorer(*, metric: str, out_dir: Path, **source) -> dict:
    """Fetch a learned metric's checkpoint (evaluate.<metric>: a Hub repo at revision, or a local
    directory) as a base model is, and write its sealed pointer directory `out_dir` (hub.json only)."""
    record = locate(**source)
    write_sealed(out_dir, {hub.POINTER: record})
    print(f"{metric}: {record.get('repo') or record['directory']} -> {record['path']}")
    return record
