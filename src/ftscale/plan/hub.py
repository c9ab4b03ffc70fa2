"""Base models from the Hub: families whose models are named, not pretrained (config
`families.<family>.hub`).

A hub family lists its models by name, each a Hugging Face Hub id (pinned to a revision) or a local
directory written by `save_pretrained`. Its model-size axis is those models at the family's pinned
revision, which has seen `tokens` pretraining tokens; its pretraining-data axis is `checkpoints`,
earlier revisions (or directories) of `base_model` with the tokens each has seen. Pure Python: the
Snakefile and `ftscale grid` import it; nothing here reads the network or loads a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REVISION = "main"  # the schema states the same default
POINTER = "hub.json"  # in a fetched base checkpoint's directory: where the model is (ftscale.train.fetch)
LOCAL_PREFIXES = ("/", "./", "../", "~")  # an entry starting so is a local directory, else a Hub id


def is_hub_family(config: dict, family: str) -> bool:
    return "hub" in config["families"][family]


def hub_families(config: dict) -> list[str]:
    return [f for f in config["families"] if is_hub_family(config, f)]


def pretraining_families(config: dict) -> list[str]:
    return [f for f in config["families"] if not is_hub_family(config, f)]


def is_local(name: str) -> bool:
    return name.startswith(LOCAL_PREFIXES)


@dataclass(frozen=True)
class Source:
    """Where one base checkpoint comes from: a Hub repo at a revision, or a local directory."""

    family: str
    model: str
    tokens: int  # pretraining tokens it has seen
    repo: str | None = None  # Hub id
    revision: str | None = None
    directory: str | None = None  # local save_pretrained directory

    @property
    def label(self) -> str:
        return self.directory if self.directory else f"{self.repo}@{self.revision}"

    def params(self) -> dict:
        """What the fetch rule's staleness follows: a changed id, revision or directory refetches."""
        return {"directory": self.directory} if self.directory else {"repo": self.repo, "revision": self.revision}


def scorer_source(spec: dict) -> dict:
    """What fetches a learned metric's checkpoint (evaluate.bleurt: {checkpoint, revision}), as
    Source.params: {repo, revision} for a Hub id, {directory} for a local one."""
    name = spec["checkpoint"]
    if is_local(name):
        return {"directory": str(Path(name).expanduser())}
    return {"repo": name, "revision": spec.get("revision", DEFAULT_REVISION)}


def _entry(hub: dict, model: str) -> tuple[str, str | None]:
    """(Hub id or directory, revision) of hub.models.<model>: a string or {id, revision}."""
    entry = hub["models"][model]
    if isinstance(entry, str):
        name, revision = entry, None
    else:
        name, revision = entry["id"], entry.get("revision")
    if is_local(name):
        return str(Path(name).expanduser()), None
    return name, revision or hub.get("revision", DEFAULT_REVISION)


def sources(config: dict, family: str) -> dict[int, dict[str, Source]]:
    """Every base checkpoint of a hub family: {tokens: {model: Source}}. The family's models at
    `tokens`; the base model's checkpoints (revisions, or directories when it is local) at theirs."""
    hub = config["families"][family]["hub"]
    out: dict[int, dict[str, Source]] = {hub["tokens"]: {}}
    for model in hub["models"]:
        name, revision = _entry(hub, model)
        out[hub["tokens"]][model] = (
            Source(family, model, hub["tokens"], directory=name)
            if revision is None
            else Source(family, model, hub["tokens"], repo=name, revision=revision)
        )
    base_name, base_revision = _entry(hub, hub["base_model"])
    for key, tokens in hub.get("checkpoints", {}).items():
        source = (
            Source(family, hub["base_model"], tokens, directory=str(Path(key).expanduser()))
            if base_revision is None
            else Source(family, hub["base_model"], tokens, repo=base_name, revision=key)
        )
        out.setdefault(tokens, {})[hub["base_model"]] = source
    return out


def source_of(config: dict, family: str, model: str, tokens: int) -> Source:
    return sources(config, family)[tokens][model]


def check(config: dict, fail) -> None:
    """Cross-references of every hub family (the schema checks the shapes): base_model among its
    models, checkpoints below `tokens` and distinct, local directories present."""
    for family in hub_families(config):
        key, hub = f"families.{family}.hub", config["families"][family]["hub"]
        if hub["base_model"] not in hub["models"]:
            fail(f"{key}.base_model", f"{hub['base_model']!r} is not one of models {list(hub['models'])}")
        for model in hub["models"]:
            if model in config.get("models", {}) or any(
                model in config["families"][other]["hub"]["models"] for other in hub_families(config) if other < family
            ):
                fail(f"{key}.models.{model}", "the name is taken by another model: names are unique across families")
        seen: dict[int, str] = {}
        for name, tokens in hub.get("checkpoints", {}).items():
            if tokens >= hub["tokens"]:
                fail(
                    f"{key}.checkpoints.{name}",
                    f"{tokens} tokens is not below the models' {hub['tokens']} (hub.tokens)",
                )
            if tokens in seen:
                fail(
                    f"{key}.checkpoints.{name}",
                    f"{tokens} tokens, as {seen[tokens]!r}: each checkpoint needs its own count",
                )
            seen[tokens] = name
        for tokens, models in sources(config, family).items():
            for model, source in models.items():
                if source.directory and not (Path(source.directory) / "config.json").is_file():
                    fail(
                        f"{key}.models.{model}" if tokens == hub["tokens"] else f"{key}.checkpoints",
                        f"{source.directory} is not a save_pretrained directory (no config.json)",
                    )


# Shapes for the planner (ftscale.plan.memory), which sizes jobs before any model is fetched. A local
# directory or a Hub model already in the cache is read from its config.json; otherwise from this
# table of the Pythia suite's published configs (Biderman et al. 2023; 50,304 embedding rows),
# so that a dry run and `ftscale grid` work offline.
PYTHIA = {  # name: (layers, model dim, heads)
    "pythia-14m": (6, 128, 4),
    "pythia-31m": (6, 256, 8),
    "pythia-70m": (6, 512, 8),
    "pythia-160m": (12, 768, 12),
    "pythia-410m": (24, 1024, 16),
    "pythia-1b": (16, 2048, 8),
    "pythia-1.4b": (24, 2048, 16),
    "pythia-2.8b": (32, 2560, 32),
    "pythia-6.9b": (32, 4096, 32),
    "pythia-12b": (36, 5120, 40),
}
KNOWN_CONFIGS = {
    f"EleutherAI/{name}{suffix}": {
        "model_type": "gpt_neox",
        "num_hidden_layers": layers,
        "hidden_size": dim,
        "num_attention_heads": heads,
        "intermediate_size": 4 * dim,
        "vocab_size": 50304,
        "tie_word_embeddings": False,
    }
    for name, (layers, dim, heads) in PYTHIA.items()
    for suffix in ("", "-deduped")
}
GATED_FFN_TYPES = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "olmo", "olmo2", "gemma", "gemma2", "phi3")


class UnknownShape(LookupError):
    """A Hub model neither in the cache nor in KNOWN_CONFIGS; str() is the one line to show."""


def model_config(source: Source) -> dict:
    """The config.json of a base checkpoint, without the network."""
    if source.directory:
        return json.loads((Path(source.directory) / "config.json").read_text())
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source.repo, "config.json", revision=source.revision)
    if isinstance(cached, str):
        return json.loads(Path(cached).read_text())
    if source.repo in KNOWN_CONFIGS:
        return KNOWN_CONFIGS[source.repo]
    raise UnknownShape(
        f"{source.label}: its shape is unknown offline; fetch it first "
        f"(hf download {source.repo} --revision {source.revision})"
    )


def shape_fields(cfg: dict) -> dict:
    """The planner's Shape fields of a transformers config.json."""
    heads = cfg["num_attention_heads"]
    dim = cfg["hidden_size"]
    return {
        "layers": cfg["num_hidden_layers"],
        "heads": heads,
        "head_dim": cfg.get("head_dim") or dim // heads,
        "ffn_dim": cfg.get("intermediate_size") or 4 * dim,
        "model_dim": dim,
        "vocab": cfg["vocab_size"],
        "kv_heads": cfg.get("num_key_value_heads") or heads,
        "gated_ffn": cfg.get("model_type") in GATED_FFN_TYPES,
        "tied_embeddings": bool(cfg.get("tie_word_embeddings", True)),
    }
