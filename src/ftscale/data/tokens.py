"""BPE tokenizer per family (a hub family's: its base model's own), the prompt format, and
tokenized arrays that later jobs memory-map.

Layout of a tokenized split (a directory of .npy files, read with mmap_mode="r"):
- pretraining: `tokens.npy`, one stream `<s> line </s> <s> line </s> ...`
- a task split: `source.npy`, `source_offsets.npy`, `target.npy`, `target_offsets.npy`, `lang.npy`;
  example i's source is source[offsets[i]:offsets[i+1]] (no special tokens; batching adds them).
Each directory is sealed with a manifest (ftscale.runtime.integrity) and checked against it when loaded.
Both are written as streams (common.STREAM_CHUNK characters encoded at once, appended to .npy files
whose header is rewritten with the count at the end: NpyStream), so memory stays flat in the corpus
size; the bytes are np.save's of the whole arrays (tests/unit/test_tokenize_stream.py). The Rust
batch encoder does nearly all the work (92% of the CPU time at 32 MiB): it runs in a worker thread
one chunk ahead of the Python reading and writing (encoded_ahead), on the rule's threads
(encoder_threads), whatever their number the same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftscale.data import common
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


def train_tokenizer(lines: Iterable[str], vocab_size: int, sample_lines: int | None = None):
    """Byte-level BPE (no unknown tokens, exact round trip), special tokens first, trained on the first
    `sample_lines` lines (None: all), read as they come: the trainer keeps counts of distinct words,
    not the text."""
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
    tokenizer.train_from_iterator(itertools.islice(lines, sample_lines), trainer=trainer)
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
    return [e.ids for e in tokenizer.encode_batch_fast(lines, add_special_tokens=False)]


def encode_flat(tokenizer, lines: list[str], dtype, bos: int | None = None, eos: int | None = None):
    """(the lines' token ids end to end, each line between bos and eos where given; tokens per line)."""
    ids = encode_lines(tokenizer, lines)
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(lengths.sum()))
    if bos is None:
        return flat, lengths
    ends = np.cumsum(lengths + 2)  # one past each line's eos
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=dtype)
    out[ends - lengths - 2], out[ends - 1] = bos, eos
    inside = np.ones(out.size, dtype=bool)
    inside[ends - lengths - 2] = inside[ends - 1] = False
    out[inside] = flat
    return out, lengths + 2


class NpyStream:
    """A 1-D .npy file written a chunk at a time: the bytes np.save writes for the whole array. The
    header is written first for no rows and rewritten with the count at the end (numpy pads it for
    any count, so its length does not change)."""

    def __init__(self, path: Path, dtype):
        self.dtype, self.count = np.dtype(dtype), 0
        self.file = open(path, "wb")
        self._header(0)

    def _header(self, count: int) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (count,)}
        np.lib.format.write_array_header_1_0(self.file, header)

    def append(self, values: np.ndarray) -> None:
        np.asarray(values, dtype=self.dtype).tofile(self.file)
        self.count += len(values)

    def close(self) -> None:
        self.file.seek(0)
        self._header(self.count)
        self.file.close()


def encoder_threads(threads: int) -> dict[str, str]:
    """The environment that gives the tokenizers' batch encoders `threads` threads (a data rule's
    `threads:`, which the planner plans: ftscale.plan.data_jobs): read once, when the library first
    encodes a batch, so a script sets it before that."""
    return {"RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true" if threads > 1 else "false"}


def encoded_ahead(encode, batches: Iterable[list]) -> Iterator:
    """encode(batch) for each batch, in order, each run in a worker thread while this thread reads
    the next batch and writes the last result (the tokenizers' batch encoders release the GIL, and
    run their own thread pool: RAYON_NUM_THREADS). At most two batches are held besides the one
    being encoded."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
        pending = None
        for batch in batches:
            if not batch:
                continue
            future = pool.submit(encode, batch)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def write_pretrain_stream(tokenizer, lines: Iterable[str], out_dir: Path) -> int:
    """Encode lines into one `<s> ... </s>` stream (tokens.npy); returns its token count."""
    return write_pretrain_batches(tokenizer, common.chunks(lines), out_dir)


def write_pretrain_batches(tokenizer, batches: Iterable[list[str]], out_dir: Path) -> int:
    """write_pretrain_stream of lines given as lists (common.text_blocks: no Python work per line)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = NpyStream(out_dir / "tokens.npy", TOKEN_DTYPE)
    for flat in encoded_ahead(lambda batch: encode_flat(tokenizer, batch, TOKEN_DTYPE, BOS_ID, EOS_ID)[0], batches):
        stream.append(flat)
    stream.close()
    integrity.seal(out_dir)
    return stream.count


def load_stream(path: str | Path) -> np.ndarray:
    """A pretraining stream (`.../tokens.npy`), memory-mapped once its directory checks out."""
    integrity.check(Path(path).parent)
    return np.load(path, mmap_mode="r")


def write_task_split(tokenizer, records: Iterable[dict], out_dir: Path) -> int:
    """Encode a split's records (the layout in the module docstring); returns their count. The
    languages are kept as indices into the few distinct ones until the end, when lang.npy is written
    at the width of the longest (np.save's `<U` width)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(tokenizer)
    streams = {name: NpyStream(out_dir / f"{name}.npy", dtype) for name in ("source", "target")}
    offsets = {name: NpyStream(out_dir / f"{name}_offsets.npy", np.int64) for name in ("source", "target")}
    ends = {name: 0 for name in streams}
    languages: dict[str, int] = {}
    lang_index = NpyStream(out_dir / ".lang_index.npy", np.int64)
    for name in offsets:
        offsets[name].append(np.zeros(1, dtype=np.int64))

    def encode(batch: list[dict]) -> tuple[dict, list[str]]:
        fields = {name: encode_flat(tokenizer, [r[name] for r in batch], dtype) for name in streams}
        return fields, [r.get("lang", "") for r in batch]

    batches = common.chunks(records, length=lambda record: len(record["source"]) + len(record["target"]))
    for fields, langs in encoded_ahead(encode, batches):
        for name, (flat, lengths) in fields.items():
            streams[name].append(flat)
            offsets[name].append(ends[name] + np.cumsum(lengths))
            ends[name] += int(lengths.sum())
        lang_index.append(np.fromiter((languages.setdefault(lang, len(languages)) for lang in langs), np.int64))
        faults.point("tokenize")  # fault-injection tests: killed with the split half written
    for stream in [*streams.values(), *offsets.values(), lang_index]:
        stream.close()
    names = np.asarray(list(languages), dtype=str)
    lang = NpyStream(out_dir / "lang.npy", names.dtype)
    indices = np.load(out_dir / ".lang_index.npy", mmap_mode="r")
    for start in range(0, len(indices), common.STREAM_CHUNK):
        lang.append(names[indices[start : start + common.STREAM_CHUNK]])
    lang.close()
    del indices
    (out_dir / ".lang_index.npy").unlink()
    integrity.seal(out_dir)
    return lang.count


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
