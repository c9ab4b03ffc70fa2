"""BLEURT (Sellam et al. 2020; BLEURT-20: Pu et al. 2021), the paper's translation metric, on
transformers' own encoder classes.

Checkpoints: the PyTorch ports of BLEURT-20 and its distillations (lucadiliello/BLEURT-20,
-D12, -D6, -D3), fetched like a Hub base model (rules/fetch.smk, ftscale.train.fetch). Their layout,
bleurt-pytorch's: config.json (model_type `bleurt`), weights (model.safetensors or
pytorch_model.bin) named `bleurt.*` and `classifier.*`, and the SentencePiece model spm.model.

Why not the `bleurt-pytorch` package (0.0.1, the one on PyPI): it does not import with
transformers 5 (its model imports `find_pruneable_heads_and_indices`, its tokenizers
`transformers.models.bert.tokenization_bert_fast`; both were removed in 5.0). Its model is BERT's
with one change, an optional projection from narrow embeddings (`embedding_size`) up to the
hidden size, which is RemBERT's `embedding_hidden_mapping_in`. So:

- `embedding_size` set (BLEURT-20: 256 -> 1152): RemBertForSequenceClassification;
- no `embedding_size`: BertForSequenceClassification;

with the weights renamed (`bleurt.` -> `rembert.`/`bert.`, `encoder.embedding_projection` ->
`encoder.embedding_hidden_mapping_in`) and loaded strictly: a missing or unexpected tensor is an
error, not a random weight.

Input, as BLEURT's own encoder (google-research/bleurt, encoding.py): the SentencePiece pieces of
the reference and of the candidate, the pair truncated longest-first to max_length - 3 pieces,
`[CLS] reference [SEP] candidate [SEP]` with segment ids 0 then 1. The score of a sentence is the
regression head's output on the pooled [CLS]; the metric is their mean (BLEURT's own scale, about
0 to 1 for BLEURT-20, not x100).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ftscale.plan import hub

TOKENIZER_FILE = "spm.model"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
RENAMED = {"encoder.embedding_projection.": "encoder.embedding_hidden_mapping_in."}
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")  # saved by older transformers, not weights


class BleurtError(ValueError):
    """A directory that is not a BLEURT checkpoint; str() is the one line to show."""


def encoder_of(config: dict):
    """(transformers model class, its config, the weights' prefix) of a BLEURT config.json."""
    from transformers import BertConfig, BertForSequenceClassification, RemBertConfig, RemBertForSequenceClassification

    common = {
        k: config[k]
        for k in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_act",
            "max_position_embeddings",
            "type_vocab_size",
            "layer_norm_eps",
            "pad_token_id",
        )
        if k in config
    } | {"num_labels": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if config.get("embedding_size"):
        narrow = config["embedding_size"]
        rembert = RemBertConfig(
            **common,
            input_embedding_size=narrow,
            output_embedding_size=narrow,  # the MLM head's: not built for classification
            classifier_dropout_prob=0.0,
            bos_token_id=None,
            eos_token_id=None,
        )
        return RemBertForSequenceClassification, rembert, "rembert."
    return BertForSequenceClassification, BertConfig(**common), "bert."


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)
    raise BleurtError(f"{directory}: no BLEURT weights ({' or '.join(WEIGHT_FILES)})")


def renamed(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """bleurt-pytorch's tensor names as the transformers class names them."""
    out = {}
    for name, tensor in weights.items():
        if name.endswith(BUFFERS):
            continue
        if name.startswith("bleurt."):
            name = prefix + name[len("bleurt.") :]
        for old, new in RENAMED.items():
            name = name.replace(old, new)
        out[name] = tensor
    return out


def truncate_pair(first: list[int], second: list[int], length: int) -> tuple[list[int], list[int]]:
    """BLEURT's truncation: drop the last piece of the longer sequence until both fit `length`."""
    first, second = list(first), list(second)
    while len(first) + len(second) > length:
        (first if len(first) > len(second) else second).pop()
    return first, second


@dataclass
class Bleurt:
    """A loaded BLEURT checkpoint: score(references, candidates) -> one score per pair."""

    model: torch.nn.Module
    pieces: object  # sentencepiece.SentencePieceProcessor
    cls: int
    sep: int
    pad: int
    max_length: int

    def encode(self, reference: str, candidate: str) -> tuple[list[int], list[int]]:
        """(input ids, segment ids) of one pair."""
        ref, cand = truncate_pair(self.pieces.encode(reference), self.pieces.encode(candidate), self.max_length - 3)
        ids = [self.cls, *ref, self.sep, *cand, self.sep]
        return ids, [0] * (len(ref) + 2) + [1] * (len(cand) + 1)

    @torch.inference_mode()
    def score(self, references: list[str], candidates: list[str], batch_size: int = 16) -> list[float]:
        """Each candidate's score against its reference; batches of similar length (right-padded,
        masked), so a batch scores each pair as it would alone."""
        pairs = [self.encode(r, c) for r, c in zip(references, candidates, strict=True)]
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
        device = next(self.model.parameters()).device
        scores = [0.0] * len(pairs)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(pairs[i][0]) for i in rows)
            ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
            segments, mask = torch.zeros_like(ids), torch.zeros_like(ids)
            for r, i in enumerate(rows):
                tokens, segment = pairs[i]
                ids[r, : len(tokens)] = torch.tensor(tokens)
                segments[r, : len(tokens)] = torch.tensor(segment)
                mask[r, : len(tokens)] = 1
            logits = self.model(
                input_ids=ids.to(device), token_type_ids=segments.to(device), attention_mask=mask.to(device)
            ).logits
            for r, value in zip(rows, logits[:, 0].float().tolist()):
                scores[r] = value
        return scores


def load(directory: str | Path, device: str | torch.device = "cpu") -> Bleurt:
    """A BLEURT checkpoint directory (bleurt-pytorch's layout), on `device`, in eval mode."""
    import sentencepiece

    directory = Path(directory)
    if not (directory / "config.json").is_file() or not (directory / TOKENIZER_FILE).is_file():
        raise BleurtError(f"{directory}: not a BLEURT checkpoint (needs config.json and {TOKENIZER_FILE})")
    config = json.loads((directory / "config.json").read_text())
    model_class, model_config, prefix = encoder_of(config)
    model = model_class(model_config)
    result = model.load_state_dict(renamed(read_weights(directory), prefix), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BleurtError(
            f"{directory}: weights do not fit a {model_class.__name__} "
            f"(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})"
        )
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(directory / TOKENIZER_FILE))
    special = {}
    for piece in ("[CLS]", "[SEP]"):
        special[piece] = pieces.piece_to_id(piece)
        if special[piece] == pieces.unk_id():
            raise BleurtError(f"{directory / TOKENIZER_FILE}: no {piece} piece")
    return Bleurt(
        model.to(device).eval(),
        pieces,
        special["[CLS]"],
        special["[SEP]"],
        config.get("pad_token_id", 0),
        config.get("max_position_embeddings", 512),
    )


def checkpoint_of(pointer_dir: str | Path) -> tuple[Path, str]:
    """(directory to load, the checkpoint's id) of a fetched scorer (hub.json, ftscale.train.fetch):
    `repo@commit sha` for a Hub model, `directory@sha256:<digest>` for a local one. A checkpoint
    directory itself (no hub.json) is its own id."""
    if not (Path(pointer_dir) / hub.POINTER).is_file():
        return Path(pointer_dir), str(pointer_dir)
    record = json.loads((Path(pointer_dir) / hub.POINTER).read_text())
    if record.get("repo"):
        return Path(record["path"]), f"{record['repo']}@{record['sha']}"
    return Path(record["path"]), f"{record['directory']}@sha256:{record['sha256']}"


def bleurt_metrics(
    hypotheses: list[str], references: list[str], pointer_dir: str | Path, batch_size: int, device="cpu"
) -> dict:
    """Mean BLEURT of hypotheses against their references, with the checkpoint's id."""
    directory, checkpoint = checkpoint_of(pointer_dir)
    scores = load(directory, device).score(references, hypotheses, batch_size)
    return {"bleurt": sum(scores) / len(scores) if scores else float("nan"), "bleurt_checkpoint": checkpoint}
