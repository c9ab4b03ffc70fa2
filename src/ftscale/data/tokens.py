"""BPE tokenizer per family, and tokenized arrays that later jobs memory-map.

Layout of a tokenized split (a directory of .npy files, read with mmap_mode="r"):
- pretraining: `tokens.npy`, one stream `<s> line </s> <s> line </s> ...`
- a task split: `source.npy`, `source_offsets.npy`, `target.npy`, `target_offsets.npy`, `lang.npy`;
  example i's source is source[offsets[i]:offsets[i+1]] (no special tokens; batching adds them).
Each directory is sealed with a manifest (ftscale.integrity) and checked against it when loaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ftscale import faults, integrity

PAD, BOS, EOS, SEP = "<pad>", "<s>", "</s>", "<sep>"
SPECIAL_TOKENS = [PAD, BOS, EOS, SEP]          # ids 0, 1, 2, 3 in this order
PAD_ID, BOS_ID, EOS_ID, SEP_ID = range(4)
TOKEN_DTYPE = np.uint16                        # vocabularies stay below 65,536


def train_tokenizer(lines: list[str], vocab_size: int):
    """Byte-level BPE (no unknown tokens, exact round trip), special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tokenizer


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(path))


def save_hf_tokenizer(tokenizer_file: str | Path, out_dir: str | Path) -> None:
    """Write the tokenizer beside a checkpoint so `AutoTokenizer.from_pretrained(dir)` loads it."""
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), pad_token=PAD, bos_token=BOS,
                            eos_token=EOS, sep_token=SEP).save_pretrained(str(out_dir))


def encode_lines(tokenizer, lines: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(lines, add_special_tokens=False)]


def write_pretrain_stream(tokenizer, lines: list[str], out_dir: Path) -> int:
    """Encode lines into one `<s> ... </s>` stream; returns its token count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces = [np.asarray([BOS_ID, *ids, EOS_ID], dtype=TOKEN_DTYPE) for ids in encode_lines(tokenizer, lines)]
    stream = np.concatenate(pieces) if pieces else np.zeros(0, TOKEN_DTYPE)
    np.save(out_dir / "tokens.npy", stream)
    integrity.seal(out_dir)
    return int(stream.size)


def load_stream(path: str | Path) -> np.ndarray:
    """A pretraining stream (`.../tokens.npy`), memory-mapped once its directory checks out."""
    integrity.check(Path(path).parent)
    return np.load(path, mmap_mode="r")


def _ragged(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in sequences])
    flat = np.fromiter((t for s in sequences for t in s), dtype=TOKEN_DTYPE, count=int(offsets[-1]))
    return flat, offsets


def write_task_split(tokenizer, records: list[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for field in ("source", "target"):
        flat, offsets = _ragged(encode_lines(tokenizer, [r[field] for r in records]))
        np.save(out_dir / f"{field}.npy", flat)
        np.save(out_dir / f"{field}_offsets.npy", offsets)
        faults.point("tokenize")   # fault-injection tests: killed with the split half written
    np.save(out_dir / "lang.npy", np.asarray([r.get("lang", "") for r in records], dtype=str))
    integrity.seal(out_dir)


class TaskSplit:
    """A memory-mapped tokenized task split."""

    def __init__(self, directory: str | Path):
        d = Path(directory)
        integrity.check(d)
        self.source = np.load(d / "source.npy", mmap_mode="r")
        self.source_offsets = np.load(d / "source_offsets.npy")
        self.target = np.load(d / "target.npy", mmap_mode="r")
        self.target_offsets = np.load(d / "target_offsets.npy")
        self.lang = np.load(d / "lang.npy")

    def __len__(self) -> int:
        return len(self.source_offsets) - 1

    def example(self, i: int, max_source: int, max_target: int) -> tuple[np.ndarray, np.ndarray]:
        """Source and target token ids of example i, cut to the maximum lengths."""
        s0, s1 = self.source_offsets[i], self.source_offsets[i + 1]
        t0, t1 = self.target_offsets[i], self.target_offsets[i + 1]
        return self.source[s0:min(s1, s0 + max_source)], self.target[t0:min(t1, t0 + max_target)]
