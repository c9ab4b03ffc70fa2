"""The base model: a decoder-only Transformer with multi-query attention (Llama, one key/value head),
sized by the paper's table (layers, heads, head dim, FFN dim, model dim)."""
from __future__ import annotations

import os

import torch

from ftscale import integrity
from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID


def device() -> torch.device:
    """Where a job computes: its GPU where it has one (a SLURM allocation; under torchrun the rank's
    own, LOCAL_RANK), else the CPU (the toy, the tests). FTSCALE_DEVICE=cpu forces the CPU. On a GPU,
    matmuls may use TF32."""
    if os.environ.get("FTSCALE_DEVICE", "") != "cpu" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def autocast(model):
    """bf16 autocast for a model on a GPU (weights and optimizer state stay fp32); nothing on the
    CPU, where the tests compare losses exactly."""
    on_gpu = model_device(model).type == "cuda"
    return torch.autocast("cuda" if on_gpu else "cpu", dtype=torch.bfloat16, enabled=on_gpu)


def llama_config(size: dict, vocab_size: int, max_positions: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size["model_dim"],
        intermediate_size=size["ffn_dim"],
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        num_key_value_heads=1,               # multi-query attention, as the paper's models
        head_dim=size["head_dim"],
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        attn_implementation="sdpa",
    )


def new_model(size: dict, vocab_size: int, max_positions: int, seed: int):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(size, vocab_size, max_positions))


def load_model(directory):
    from transformers import LlamaForCausalLM

    integrity.check(directory)   # a checkpoint cut short is never loaded
    return LlamaForCausalLM.from_pretrained(str(directory), dtype=torch.float32)


def count_parameters(model, trainable_only: bool = False) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
