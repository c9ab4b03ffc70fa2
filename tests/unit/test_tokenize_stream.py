"""Pretraining text is tokenized as a stream (bounded memory; bench/bench_tokenize.py measures it):
the same lines as str.splitlines, and the same tokens.npy bytes as encoding the whole corpus at once."""

import numpy as np
import pytest

from ftscale.data import tokens

# every kind of line boundary str.splitlines knows, after universal newlines (\r\n and \r become \n)
TEXT = "hello world\r\nhallo welt\rbonjour\x0bmonde\x0c\n\nciao\u2028mondo\x1cend\x85x\u2029tail without newline"


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_text_lines_are_splitlines_read_in_blocks(tmp_path, monkeypatch, block):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8", newline="")
    monkeypatch.setattr(tokens, "TEXT_BLOCK_CHARS", block)
    assert list(tokens.text_lines(path)) == path.read_text(encoding="utf-8").splitlines()
    path.write_text(TEXT + "\n", encoding="utf-8", newline="")
    assert list(tokens.text_lines(path)) == path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_the_stream_is_the_bytes_of_the_whole_corpus_encoded_at_once(tmp_path, monkeypatch, batch):
    lines = [f"line {i} " + "word " * (i % 7) for i in range(50)] + ["", "last"]
    tokenizer = tokens.train_tokenizer(lines * 3, 300)
    monkeypatch.setattr(tokens, "STREAM_BATCH_LINES", batch)
    count = tokens.write_pretrain_stream(tokenizer, iter(lines), tmp_path / "stream")
    whole = np.concatenate(
        [
            np.asarray([tokens.BOS_ID, *ids, tokens.EOS_ID], dtype=tokens.TOKEN_DTYPE)
            for ids in tokens.encode_lines(tokenizer, lines)
        ]
    )
    np.save(tmp_path / "whole.npy", whole)
    assert (tmp_path / "stream" / "tokens.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    assert count == whole.size and np.array_equal(tokens.load_stream(tmp_path / "stream" / "tokens.npy"), whole)


def test_an_empty_corpus_is_an_empty_stream(tmp_path):
    tokenizer = tokens.train_tokenizer(["a b c"] * 5, 300)
    assert tokens.write_pretrain_stream(tokenizer, [], tmp_path / "s") == 0
    assert tokens.load_stream(tmp_path / "s" / "tokens.npy").shape == (0,)
