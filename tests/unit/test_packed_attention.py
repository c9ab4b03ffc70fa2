"""finetune.attention packed (ftscale.train.packed_attention, issue 25 item 4): packed rows computed
without transformers' dense 4-D block mask and without repeating the one key/value head to every
query head; equal to each example alone (tests/unit/test_fast_path.py's `packed` batching); the
GPU's flash variable-length call well-formed, forward and backward, under FakeTensorMode."""

from unittest import mock

import pytest
import torch

from ftscale.train import finetune, packed_attention
from tests.unit.test_fast_path import examples, model_for  # noqa: F401


def attention_calls(model, batch) -> list[tuple]:
    """(key heads, attention mask shape or None) of every SDPA call of the batch's loss and backward."""
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def record(query, key, value, attn_mask=None, *args, **kwargs):
        calls.append((key.shape[1], None if attn_mask is None else tuple(attn_mask.shape)))
        return sdpa(query, key, value, attn_mask, *args, **kwargs)

    with mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", record):
        nll, count = finetune.target_nll(model, batch)
        (nll / count).backward()
    return calls


def test_packed_rows_get_no_block_mask_and_one_kv_head(examples):  # noqa: F811
    model = model_for("fmt", None)
    batch = finetune.make_batch(model, examples)
    rows, length = batch["input_ids"].shape
    heads = model.config.num_attention_heads
    assert model.config.num_key_value_heads == 1 < heads
    before = attention_calls(model, batch)  # transformers' sdpa: the block mask, K/V repeated
    assert before and all(call == (heads, (rows, 1, length, length)) for call in before)
    packed_attention.use(finetune.causal_lm_of(model))
    after = attention_calls(model, finetune.make_batch(model, examples))
    # one call per example (and per row's trailing padding) per layer, each alone: no mask, one K/V head
    assert len(after) == model.config.num_hidden_layers * (len(batch["cu_seq_lens"]) - 1)
    assert all(call == (1, None) for call in after)


def test_the_gpu_path_calls_flash_varlen_without_repeating_kv():
    from torch._subclasses.fake_tensor import FakeTensorMode

    rows, heads, length, dim = 2, 4, 8, 16
    offsets = torch.tensor([0, 4, 8, 14, 16], dtype=torch.int32)  # examples of 4, 4, 6 and 2 tokens
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 0, 1]])
    from torch.nn.attention import varlen

    calls, kernel = [], varlen.varlen_attn

    def record(query, key, value, *args, **kwargs):
        calls.append((tuple(key.shape), kwargs["enable_gqa"], kwargs["window_size"]))
        return kernel(query, key, value, *args, **kwargs)

    with (
        mock.patch.object(packed_attention, "varlen_kernel", lambda query: True),
        mock.patch.object(varlen, "varlen_attn", record),
        FakeTensorMode(allow_non_fake_inputs=True),  # the offsets and positions: host values, as pack makes them
    ):
        query = torch.empty(rows, heads, length, dim, dtype=torch.bfloat16, requires_grad=True)
        key, value = (torch.empty(rows, 1, length, dim, dtype=torch.bfloat16, requires_grad=True) for _ in "kv")
        out, _ = packed_attention.attention(
            None, query, key, value, None, scaling=0.25, position_ids=positions, cu_seq_lens_q=offsets, max_length_q=6
        )
        assert out.shape == (rows, length, heads, dim)
        out.sum().backward()
        assert key.grad.shape == key.shape and query.grad.shape == query.shape
    # the examples one after another, the one K/V head as it is, causal (window (-1, 0))
    assert calls == [((rows * length, 1, dim), True, (-1, 0))]


@pytest.mark.parametrize("positions, offsets", [([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]], [0, 3, 5, 10])])
def test_examples_start_where_positions_restart(positions, offsets):
    found = packed_attention.cumulative_lengths(torch.tensor(positions))
    assert found.tolist() == offsets and found.dtype == torch.int32


def test_use_keeps_the_models_own_attention_where_packed_examples_would_differ():
    """use() probes the model with its attention here (model.honours_packing): an architecture whose
    attention is not handed the position ids would attend across examples, and keeps its own. GPT-2
    (absolute positions) and Llama are handed them; a probe that fails is put in by hand."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftscale.train import model as model_module

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=16, n_layer=2, n_head=2))
    gpt2.set_attn_implementation("sdpa")
    assert packed_attention.use(gpt2) and gpt2.config._attn_implementation == packed_attention.NAME
    llama = model_module.new_model({"layers": 2, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}, 300, 64, 0)
    with mock.patch.object(model_module, "honours_packing", lambda causal_lm: False):
        assert not packed_attention.use(llama) and llama.config._attn_implementation == "sdpa"
    assert packed_attention.use(llama) and llama.config._attn_implementation == packed_attention.NAME
