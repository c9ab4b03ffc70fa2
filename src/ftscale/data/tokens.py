"""BPE tokenizer per family (a hub family's: its base model's own), the prompt format, and
tokenized arrays that later jobs memory-map.

Layout of a tokenized split (a directory of .npy files, read with mmap_mode="r"):
- pretraining: `tokens.npy`, one stream `<s> line </s> <s> line </s> ...`
- a task split: `source.npy`, `source_offsets.npy`, `target.npy`, `target_offsets.npy`, `lang.npy`;
  example i's source is source[offsets[i]:offsets[i+1]] (no special tokens; batching adds them).
Each directory is sealed with a manifest (ftscale.runtime.integrity) and checked against it when loaded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftscale.runtime import faults, integrity

PAD, BOS, EOS, SEP = "<pad>", "<s>", "</s>", "<sep>"
SPECIAL_TOKENS = [PAD, BOS, EOS, SEP]  # ids 0, 1, 2, 3 in this order
PAD_ID, BOS_ID, EOS_ID, SEP_ID = range(4)
TOKEN_DTYPE = np.uint16  # our vocabularies stay below 65,536
WIDE_TOKEN_DTYPE = np.uint32  # a Hub tokenizer's may not (Llama 3: 128,256)


@dataclass(frozen=True)
class PromptFormat:
    """How an example is laid out for a model: `bos source sep target eos` (finetuning, decoding,
    few-shot demonstrations); pad fills batches where it is masked and unlabelled."""

    bos: tuple[int, ...]
    sep: tuple[int, ...]
    eos: int
    pad: int

    @property
    def prompt_tokens(self) -> int:
        """Tokens a decoding prompt adds to its source: bos and sep."""
        return len(self.bos) + len(self.sep)

    @property
    def example_tokens(self) -> int:
        """Tokens an example adds to its source and target: bos, sep and eos."""
        return self.prompt_tokens + 1


OWN_FORMAT = PromptFormat((BOS_ID,), (SEP_ID,), EOS_ID, PAD_ID)  # ftscale's tokenizers (train_tokenizer)
SEPARATOR_TEXT = "\n"  # between source and target, for a tokenizer without a sep token (Pythia, Llama)


def prompt_format(tokenizer) -> PromptFormat:
    """A transformers tokenizer's format: its BOS (if any), sep token or else SEPARATOR_TEXT, EOS.
    Without a pad token, EOS pads: padded positions are masked out and never labelled, and decoding
    stops at the first EOS, so the choice never shows in a result."""
    name = getattr(tokenizer, "name_or_path", "the tokenizer")
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{name}: the tokenizer has no EOS token, so a finetuned model could not end its output")
    bos = () if tokenizer.bos_token_id is None else (tokenizer.bos_token_id,)
    sep = (
        (tokenizer.sep_token_id,)
        if tokenizer.sep_token_id is not None
        else tuple(tokenizer.encode(SEPARATOR_TEXT, add_special_tokens=False))
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PromptFormat(bos, sep, tokenizer.eos_token_id, pad)


def has_hf_tokenizer(directory: str | Path) -> bool:
    return (Path(directory) / "tokenizer_config.json").is_file()


def format_of(directory: str | Path) -> PromptFormat:
    """The prompt format of a model directory: from its tokenizer files, else ftscale's own."""
    if not has_hf_tokenizer(directory):
        return OWN_FORMAT
    from transformers import AutoTokenizer

    return prompt_format(AutoTokenizer.from_pretrained(str(directory)))


def save_model_tokenizer(model_dir: str | Path, out_dir: str | Path):
    """A hub family's tokenizer: its base model's own (AutoTokenizer), saved to out_dir (its
    tokenizer.json is what the tokenize rules read). Returns its prompt format."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not tokenizer.is_fast:
        raise ValueError(f"{model_dir}: the tokenizer has no fast (tokenizers-library) version to tokenize with")
    fmt = prompt_format(tokenizer)
    tokenizer.save_pretrained(str(out_dir))
    return fmt


def token_dtype(tokenizer) -> np.dtype:
    """The narrowest array type that holds every id of the tokenizer (a tokenizers.Tokenizer)."""
    return (
        TOKEN_DTYPE
        if tokenizer.get_vocab_size(with_added_tokens=True) <= np.iinfo(TOKEN_DTYPE).max + 1
        else WIDE_TOKEN_DTYPE
    )


def train_tokenizer(lines: list[str], vocab_size: int):
    """Byte-level BPE (no unknown tokens, exact round trip), special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tokenizer


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def save_hf_tokenizer(tokenizer_file: str | Path, out_dir: str | Path) -> None:
    """Write the tokenizer beside a checkpoint so `AutoTokenizer.from_pretrained(dir)` loads it."""
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file), pad_token=PAD, bos_token=BOS, eos_token=EOS, sep_token=SEP
    ).save_pretrained(str(out_dir))


def encode_lines(tokenizer, lines: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(lines, add_special_tokens=False)]


STREAM_BATCH_LINES = 10_000  # lines encoded at once: what tokenizing a corpus holds in memory
TEXT_BLOCK_CHARS = 1 << 24  # characters read at once


def text_lines(path: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, exactly as `read_text().splitlines()` gives them (all of str's
    line boundaries, universal newlines), read block by block: memory bounded by a block, not the file."""
    carry = ""
    with open(path, encoding="utf-8") as f:
        while block := f.read(TEXT_BLOCK_CHARS):
            pieces = (carry + block).splitlines(keepends=True)
            last = pieces.pop()
            ended = len(last.splitlines()[0]) < len(last)  # the last piece ends with a line boundary
            carry = "" if ended else last
            yield from (piece.splitlines()[0] for piece in (pieces + [last] if ended else pieces))
    if carry:
        yield carry


def write_pretrain_stream(tokenizer, lines: Iterable[str], out_dir: Path) -> int:
    """Encode lines into one `<s> ... </s>` stream (tokens.npy, the bytes np.save writes); returns its
    token count. Streams: STREAM_BATCH_LINES lines at a time are encoded and appended after a .npy
    header, which is rewritten with the count at the end (numpy's header has room for any count), so
    memory stays flat in the corpus size (bench/bench_tokenize.py)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(TOKEN_DTYPE)), "fortran_order": False}
    count, lines = 0, iter(lines)
    with open(out_dir / "tokens.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (0,)})
        while batch := list(itertools.islice(lines, STREAM_BATCH_LINES)):
            ids = encode_lines(tokenizer, batch)
            chunk = np.empty(sum(len(i) + 2 for i in ids), dtype=TOKEN_DTYPE)
            at = 0
            for line_ids in ids:
                chunk[at], chunk[at + 1 : at + 1 + len(line_ids)], chunk[at + 1 + len(line_ids)] = (
                    BOS_ID,
                    line_ids,
                    EOS_ID,
                )
                at += len(line_ids) + 2
            chunk.tofile(f)
            count += chunk.size
        f.seek(0)
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (count,)})
    integrity.seal(out_dir)
    return count


def load_stream(path: str | Path) -> np.ndarray:
    """A pretraining stream (`.../tokens.npy`), memory-mapped once its directory checks out."""
    integrity.check(Path(path).parent)
    return np.load(path, mmap_mode="r")


def _ragged(sequences: list[list[int]], dtype=TOKEN_DTYPE) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in sequences])
    flat = np.fromiter((t for s in sequences for t in s), dtype=dtype, count=int(offsets[-1]))
    return flat, offsets


def write_task_split(tokenizer, records: list[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for field in ("source", "target"):
        flat, offsets = _ragged(encode_lines(tokenizer, [r[field] for r in records]), token_dtype(tokenizer))
        np.save(out_dir / f"{field}.npy", flat)
        np.save(out_dir / f"{field}_offsets.npy", offsets)
        faults.point("tokenize")  # fault-injection tests: killed with the split half written
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
        return self.source[s0 : min(s1, s0 + max_source)], self.target[t0 : min(t1, t0 + max_target)]
