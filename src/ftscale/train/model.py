"""The base model: a decoder-only Transformer (Llama; multi-query attention and tied embeddings
unless a models.<name> entry says otherwise), sized by the paper's table (layers, heads, head dim,
FFN dim, model dim); or, for a hub family, any AutoModelForCausalLM (ftscale.plan.hub,
ftscale.train.fetch), loaded through the same load_model."""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path

import torch

from ftscale.config import model_option_defaults
from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID
from ftscale.plan import hub
from ftscale.runtime import integrity
from ftscale.runtime.jobs import check_cuda


def device() -> torch.device:
    """Where a job computes: its GPU where it has one (a SLURM allocation; under torchrun the rank's
    own, LOCAL_RANK), else the CPU (the toy, the tests). FTSCALE_DEVICE=cpu forces the CPU. On a GPU,
    matmuls may use TF32. A process SLURM gave GPUs that torch cannot use stops (jobs.check_cuda)."""
    check_cuda()
    if os.environ.get("FTSCALE_DEVICE", "") != "cpu" and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def model_device(model) -> torch.device:
    return next(model.parameters()).device


GPU_COMPUTE_DTYPE = torch.bfloat16  # forward and backward on a GPU; weights and optimizer state stay fp32


def autocast(model):
    """Autocast to GPU_COMPUTE_DTYPE for a model on one GPU; nothing on the CPU, where the tests
    compare losses exactly, nor for a sharded model, whose units compute in that dtype already
    (FSDP's MixedPrecisionPolicy: ftscale.train.distributed.shard)."""
    from torch.distributed.fsdp import FSDPModule

    on_gpu = model_device(model).type == "cuda" and not isinstance(model, FSDPModule)
    return torch.autocast("cuda" if on_gpu else "cpu", dtype=GPU_COMPUTE_DTYPE, enabled=on_gpu)


def llama_config(size: dict, vocab_size: int, max_positions: int):
    """The model of `size` (a models.<name> entry; its kv_heads and tied_embeddings, where not given,
    the schema's defaults: multi-query attention, tied embeddings)."""
    from transformers import LlamaConfig

    size = model_option_defaults() | size

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size["model_dim"],
        intermediate_size=size["ffn_dim"],
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        num_key_value_heads=size["kv_heads"],
        head_dim=size["head_dim"],
        max_position_embeddings=max_positions,
        tie_word_embeddings=size["tied_embeddings"],
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        attn_implementation="sdpa",
    )


def new_model(size: dict, vocab_size: int, max_positions: int, seed: int):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(size, vocab_size, max_positions))


def base_path(directory) -> Path:
    """Where a checkpoint's files are: a fetched base model's snapshot or local directory (its
    hub.json, ftscale.train.fetch), else the directory itself."""
    pointer = Path(directory) / hub.POINTER
    if not pointer.is_file():
        return Path(directory)
    path = Path(json.loads(pointer.read_text())["path"])
    if not path.is_dir():  # a cleaned cache, a moved directory
        raise FileNotFoundError(
            f"{path}: the base model {directory} was fetched from is gone; fetch it again "
            f"(snakemake --forcerun fetch_base, or remove {directory})"
        )
    return path


def load_model(directory, dtype: str = "float32"):
    """Any causal LM: ftscale's own Llama-style models, a Hub model, a finetuned (FMT) checkpoint;
    its weights in `dtype` (float32 to train; evaluation may take bfloat16: evaluate.weights_dtype)."""
    from transformers import AutoModelForCausalLM

    integrity.check(directory)  # a checkpoint cut short is never loaded
    return AutoModelForCausalLM.from_pretrained(str(base_path(directory)), dtype=getattr(torch, dtype))


def save_checkpoint(model, directory: Path, dtype: str = "float32") -> None:
    """save_pretrained (a whole model, or a peft model's adapters) with its floating-point weights in
    `dtype` (finetune.checkpoint_dtype), then sealed. The model is cast in place: call it last."""
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    model.save_pretrained(str(directory))
    integrity.seal(directory)


def empty_model(directory):
    """load_model's model without its weights: on the meta device, no memory (a sharded job's ranks
    receive the weights from rank 0: ftscale.train.distributed.shard); in eval mode, as loaded."""
    from transformers import AutoConfig, AutoModelForCausalLM

    integrity.check(directory)
    config = AutoConfig.from_pretrained(str(base_path(directory)))
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def base_format(directory):
    """How examples are laid out for a base model (ftscale.data.tokens.PromptFormat): from its own
    tokenizer, or ftscale's when the directory has none (a model built by a test)."""
    from ftscale.data.tokens import format_of

    return format_of(base_path(directory))


def honours_packing(causal_lm) -> bool:
    """Whether the architecture computes packed examples (position ids restarting at 0, no
    attention mask) exactly as each alone: probed on two short random sequences. Where it does not
    (it ignores the position ids, or attends across examples), finetuning pads instead."""
    base = causal_lm.base_model
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(0, causal_lm.config.vocab_size, (n,), generator=generator) for n in (5, 7))
    device = model_device(causal_lm)
    was_training = causal_lm.training
    causal_lm.eval()
    with torch.inference_mode():
        packed = base(
            input_ids=torch.cat((first, second))[None].to(device),
            use_cache=False,
            position_ids=torch.cat((torch.arange(5), torch.arange(7)))[None].to(device),
        ).last_hidden_state[0]
        alone = torch.cat(
            [base(input_ids=ids[None].to(device), use_cache=False).last_hidden_state[0] for ids in (first, second)]
        )
    causal_lm.train(was_training)
    return bool(torch.allclose(packed.float(), alone.float(), atol=1e-4, rtol=1e-3))


def count_parameters(model, trainable_only: bool = False) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


_PACKS = weakref.WeakKeyDictionary()  # causal LM -> whether it honours packing (probed once)


def packs(causal_lm, known: bool | None = None) -> bool:
    """Whether this model's batches may be packed (honours_packing, asked once per model); `known`:
    the answer probed on another copy of the model (a sharded model's, before sharding)."""
    if known is not None:
        _PACKS[causal_lm] = known
    if causal_lm not in _PACKS:
        _PACKS[causal_lm] = honours_packing(causal_lm)
    return _PACKS[causal_lm]
