"""The data stages stream (bounded memory; bench/bench_tokenize.py measures it): text is read in
chunks as str.splitlines would split it, and the token files are the bytes of encoding the whole
corpus at once (np.save of whole arrays, as the stages wrote them before they streamed), whatever
the chunk size."""

import numpy as np
import pytest

from ftscale.data import common, sources, tokens
from ftscale.data.local import LocalSource

# every kind of line boundary str.splitlines knows, after universal newlines (\r\n and \r become \n)
TEXT = "hello world\r\nhallo welt\rbonjour\x0bmonde\x0c\n\nciao\u2028mondo\x1cend\x85x\u2029tail without newline"
LINES = [f"line {i} " + "word " * (i % 7) + "wörter 中文" * (i % 3) for i in range(50)] + ["", "last"]
CHUNKS = [1, 3, 40, 1 << 20]  # characters encoded at once (common.STREAM_CHUNK)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize("text", [TEXT, TEXT + "\n", TEXT + "\r", "a\r", "\r\n", "", "äöü€中文\r\n" * 5])
def test_text_lines_are_splitlines_read_in_blocks(tmp_path, monkeypatch, block, text):
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8", newline="")
    monkeypatch.setattr(common, "STREAM_CHUNK", block)
    assert list(common.text_lines(path)) == path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("block", [1, 2, 4, 1 << 20])
def test_bytes_that_are_not_utf8_are_one_line_naming_the_file_and_offset(tmp_path, monkeypatch, block):
    path = tmp_path / "corpus.txt"
    monkeypatch.setattr(common, "STREAM_CHUNK", block)
    for data, offset in ((b"ab\ncd\xffef\n", 5), ("ab€".encode()[:-1], 2)):
        path.write_bytes(data)
        with pytest.raises(
            common.DataError, match=f"^{path}: not UTF-8 text \\(undecodable byte at offset {offset}\\)$"
        ):
            list(common.text_lines(path))


@pytest.fixture(scope="module")
def tokenizer():
    return tokens.train_tokenizer(LINES * 3, 300)


@pytest.mark.parametrize("parallel", ["false", "true"])  # the encoder's threads (tokens.encoder_threads)
@pytest.mark.parametrize("chunk", CHUNKS)
def test_the_stream_is_the_bytes_of_the_whole_corpus_encoded_at_once(tmp_path, monkeypatch, tokenizer, chunk, parallel):
    monkeypatch.setattr(common, "STREAM_CHUNK", chunk)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", parallel)
    count = tokens.write_pretrain_stream(tokenizer, iter(LINES), tmp_path / "stream")
    # as the script reads a file: its lines a block at a time (common.text_blocks)
    (tmp_path / "corpus.txt").write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    tokens.write_pretrain_batches(tokenizer, common.text_blocks(tmp_path / "corpus.txt"), tmp_path / "blocks")
    whole = np.concatenate(
        [
            np.asarray([tokens.BOS_ID, *e.ids, tokens.EOS_ID], dtype=tokens.TOKEN_DTYPE)
            for e in tokenizer.encode_batch(LINES, add_special_tokens=False)
        ]
    )
    np.save(tmp_path / "whole.npy", whole)
    assert (tmp_path / "stream" / "tokens.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    assert (tmp_path / "blocks" / "tokens.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    assert count == whole.size and np.array_equal(tokens.load_stream(tmp_path / "stream" / "tokens.npy"), whole)


def whole_task_split(tokenizer, records, out_dir):
    """The task split as write_task_split wrote it before it streamed: whole lists, np.save."""
    out_dir.mkdir()
    for field in ("source", "target"):
        ids = [e.ids for e in tokenizer.encode_batch([r[field] for r in records], add_special_tokens=False)]
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(s) for s in ids])
        np.save(out_dir / f"{field}.npy", np.fromiter((t for s in ids for t in s), dtype=tokens.TOKEN_DTYPE))
        np.save(out_dir / f"{field}_offsets.npy", offsets)
    np.save(out_dir / "lang.npy", np.asarray([r.get("lang", "") for r in records], dtype=str))


RECORDS = [
    {"source": LINES[i], "target": LINES[-1 - i], "lang": ["en", "de", "", "fra"][i % 4]} for i in range(len(LINES))
]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize(
    "records", [RECORDS, [r | {"lang": "de"} for r in RECORDS], [r | {"lang": ""} for r in RECORDS], []]
)
def test_a_task_split_is_the_bytes_of_its_records_encoded_at_once(tmp_path, monkeypatch, tokenizer, chunk, records):
    monkeypatch.setattr(common, "STREAM_CHUNK", chunk)
    assert tokens.write_task_split(tokenizer, iter(records), tmp_path / "split") == len(records)
    whole_task_split(tokenizer, records, tmp_path / "whole")
    written = sorted(p.name for p in (tmp_path / "split").iterdir() if p.suffix == ".npy")
    assert written == sorted(p.name for p in (tmp_path / "whole").iterdir())
    for name in written:
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    split = tokens.TaskSplit(tmp_path / "split")  # sealed, and reads back
    assert len(split) == len(records)


def test_an_empty_corpus_is_an_empty_stream(tmp_path, tokenizer):
    assert tokens.write_pretrain_stream(tokenizer, [], tmp_path / "s") == 0
    assert tokens.load_stream(tmp_path / "s" / "tokens.npy").shape == (0,)


def test_a_tokenizer_trained_on_a_stream_or_its_first_lines_is_the_one_trained_on_a_list(tmp_path):
    (tmp_path / "corpus.txt").write_text("\n".join(LINES * 3) + "\n", encoding="utf-8")
    streamed = tokens.train_tokenizer(common.text_lines(tmp_path / "corpus.txt"), 300)
    assert streamed.to_str() == tokens.train_tokenizer(LINES * 3, 300).to_str()
    sampled = tokens.train_tokenizer(common.text_lines(tmp_path / "corpus.txt"), 300, sample_lines=20)
    assert sampled.to_str() == tokens.train_tokenizer(LINES[:20], 300).to_str() != streamed.to_str()


def test_a_local_pretraining_corpus_is_read_only_as_its_lines_are_asked_for(tmp_path):
    (tmp_path / "en.txt").write_text("".join(f"en {i}\n" for i in range(10)), encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff")  # reached only past the first file's lines
    options = {"pretrain": {"en": [{"path": str(tmp_path / "en.txt")}, {"path": str(tmp_path / "bad.txt")}]}}
    source = LocalSource(0, options)
    lines = sources.pretrain_splits(source, "e", ["en"], 5, 0.02)["train"]
    assert list(lines) == [f"en {i}" for i in range(1, 6)] and len(source.read) == 1
    with pytest.raises(common.DataError, match="bad.txt: not UTF-8"):
        list(LocalSource(0, options).pretrain_lines("e", ["en"], "train", 1, 20))
