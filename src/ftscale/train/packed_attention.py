"""Attention for packed rows without a dense mask (issue 25, item 4): finetuning's `attention: packed`.

A packed row holds several examples, each with position ids restarting at 0 (ftscale.train.batches.pack).
Under transformers' `sdpa` such a row gets a 4-D boolean block mask (rows x 1 x T x T bytes) and, as the
mask rules out SDPA's grouped-query path, every layer repeats the one key/value head to all query heads
(`repeat_kv`) before attention saves them for backward. Here instead each example is a sequence of its
own, found from the cumulative example lengths (`cu_seq_lens`, which `pack` computes on the host):
- on a GPU, flash attention's variable-length kernel (torch.nn.attention.varlen.varlen_attn): causal,
  grouped-query (the K/V heads are never expanded), no mask at all;
- elsewhere (the CPU: tests, the toy), SDPA on each example alone, causal and grouped-query: exactly
  the computation of each example run alone.
Every other call (padded rows, decoding with a KV cache) is transformers' own `sdpa`, its mask and all.

Registered with transformers under NAME; a model uses it after use(causal_lm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "ftscale_packed"


def cumulative_lengths(position_ids: torch.Tensor) -> torch.Tensor:
    """(examples + 1,) int32 offsets of the examples in the flattened rows: an example starts wherever
    its position id is 0 (and every row starts one). On the host for a CPU tensor; a GPU job passes
    pack's precomputed offsets instead (this syncs)."""
    flat = position_ids.reshape(-1)
    starts = torch.nonzero(flat == 0).flatten()
    end = torch.tensor([flat.numel()], device=flat.device)
    return torch.cat((starts, end)).to(torch.int32)


def varlen_kernel(query: torch.Tensor) -> bool:
    """Whether flash attention's variable-length kernel runs here (a GPU's; bench_memory patches this
    to measure the GPU path under FakeTensorMode)."""
    return query.is_cuda


def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention-function interface: query (rows, heads, T, head dim), key and value
    (rows, kv heads, T, head dim); returns ((rows, T, heads, head dim), None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    same_length = query.shape[2] == key.shape[2] > 1
    if attention_mask is not None or not same_length or position_ids is None or dropout:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    offsets = kwargs.get("cu_seq_lens_q")
    offsets = cumulative_lengths(position_ids.expand(len(query), -1)) if offsets is None else offsets
    rows, heads, length, dim = query.shape
    # (rows, heads, T, dim) -> (rows x T, heads, dim): the examples one after another
    q, k, v = (t.transpose(1, 2).reshape(rows * length, t.shape[1], dim) for t in (query, key, value))
    if varlen_kernel(query):
        from torch.nn.attention.varlen import varlen_attn

        if torch.is_autocast_enabled(q.device.type):  # a custom op: autocast does not cast for it
            dtype = torch.get_autocast_dtype(q.device.type)
            q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        longest = kwargs.get("max_length_q") or int((offsets[1:] - offsets[:-1]).max())
        out = varlen_attn(
            q, k, v, offsets, offsets, longest, longest, scale=scaling, window_size=(-1, 0), enable_gqa=True
        )
    else:
        bounds = offsets.tolist()
        out = torch.cat(
            [
                F.scaled_dot_product_attention(
                    *(t[start:end].transpose(0, 1)[None] for t in (q, k, v)),
                    is_causal=True,
                    scale=scaling,
                    enable_gqa=True,
                )[0].transpose(0, 1)
                for start, end in zip(bounds[:-1], bounds[1:])
            ]
        )
    return out.reshape(rows, length, heads, dim), None


def mask(batch_size, q_length, kv_length, q_offset=0, kv_offset=0, attention_mask=None, **kwargs):
    """transformers' mask interface: no mask where attention() finds the examples itself (no padding
    mask, no cache: training and loss rows), else sdpa's."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None and q_offset == 0 and kv_offset == 0 and q_length == kv_length:
        return None
    return sdpa_mask(batch_size, q_length, kv_length, q_offset, kv_offset, attention_mask=attention_mask, **kwargs)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, mask)


def use(causal_lm, probe: bool = True) -> bool:
    """Compute the model's attention here (NAME) from now on, where it computes packed examples as
    each alone (ftscale.train.model.honours_packing: an architecture whose attention is not handed
    the position ids would attend across examples); else leave it as it was. Whether it does."""
    from ftscale.train.model import honours_packing

    register()
    before = causal_lm.config._attn_implementation
    causal_lm.set_attn_implementation(NAME)
    if probe and not honours_packing(causal_lm):
        causal_lm.set_attn_implementation(before)
        return False
    return True
