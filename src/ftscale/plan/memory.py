"""Peak memory of one job, term by term: what ftscale.plan.sizing sizes micro-batches, GPUs and host memory by.

Everything here is bytes, counted from the tensors the code allocates (ftscale.train.model, finetune,
pretrain, evaluate): weights, gradients, optimizer state, activations, logits, KV cache. Pure
Python on the config's size table (no torch), so `ftscale grid` and the Snakefile stay cheap.

How the jobs run, and so what is counted:
- On a GPU, weights, gradients and Adafactor's state are fp32 (load_model reads float32); the
  forward and backward run under bf16 autocast, so activations are bf16 and autocast keeps a bf16
  copy of every weight a matmul saved for backward. On the CPU everything is fp32 (no autocast).
- A job on G > 1 GPUs shards weights, gradients and optimizer state G ways (FSDP2 full shard) and
  gathers one unit (a decoder layer, or the embedding) at a time in bf16, prefetching the next.
- Terms under about 1% of a job's peak are left out: rotary tables, attention masks, LoRA's own
  activations (rank x tokens), the optimizer's scalars.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

GB = 1e9                          # the unit of every figure shown (decimal: SLURM's --mem is MB)

# Bytes per element.
FP32 = 4                          # weights, gradients, optimizer state; every activation on the CPU
BF16 = 2                          # activations and weight copies under autocast on a GPU

# Logits are (tokens, vocabulary): the largest activation of a small model. Per logit, in
# training: the logits in the compute dtype, their fp32 upcast for the loss, the log-softmax the
# loss keeps for backward and, in backward, its gradient (3 x fp32 beside the compute copy); in
# inference the first three.
LOGIT_FP32_COPIES_TRAIN = 3
LOGIT_FP32_COPIES_INFER = 2

# FSDP2 keeps the unit being computed and the prefetched next one gathered (in bf16), plus one
# unit's unsharded fp32 gradient before it is reduce-scattered.
FSDP_UNITS_GATHERED = 2

# Adafactor's update allocates full-size temporaries of the parameter being stepped
# (transformers.Adafactor: grad**2 + eps, then the approximated update): two of the largest.
ADAFACTOR_STEP_TEMPORARIES = 2

CUDA_CONTEXT_BYTES = 1.0 * GB     # CUDA context, cuBLAS/cuDNN workspaces: outside the caching allocator
USABLE_GPU_FRACTION = 0.9         # the rest is the caching allocator's fragmentation

# Host memory of one process (one per GPU, or the one CPU process).
HOST_BASELINE_BYTES = 2.5 * GB    # Python, torch, transformers, peft resident before any model (measured)
HOST_CUDA_BYTES = 1.5 * GB        # CUDA runtime and kernels mapped on the host by a GPU process
EXAMPLE_OVERHEAD_BYTES = 200      # an encoded example held as a Python tuple of a numpy int64 array
TOKEN_BYTES_HOST = 8              # encoded examples are int64 (finetune.encode)


@dataclass(frozen=True)
class Shape:
    """A model size of the config table and its vocabulary. The defaults are ftscale's own models;
    a Hub model's config says otherwise (ftscale.plan.hub.shape_fields: Pythia has a key/value head per
    query head, a two-matrix GELU FFN and an LM head of its own)."""
    layers: int
    heads: int
    head_dim: int
    ffn_dim: int
    model_dim: int
    vocab: int
    kv_heads: int = 1              # multi-query attention
    gated_ffn: bool = True         # SwiGLU: gate, up and down projections
    tied_embeddings: bool = True   # the LM head is the embedding

    @classmethod
    def of(cls, config: dict, model: str) -> "Shape":
        return cls(**config["models"][model], vocab=config["data"]["tokenizer_vocab_size"])

    @property
    def attention_dim(self) -> int:       # query heads x head dim
        return self.heads * self.head_dim


def layer_matrices(s: Shape) -> list[tuple[int, int]]:
    """(out, in) of a decoder layer's projections: attention with kv_heads key/value heads, then a
    SwiGLU (three matrices) or plain (two) FFN. Biases are left out (a fraction of a percent)."""
    kv = s.kv_heads * s.head_dim
    attention = [(s.attention_dim, s.model_dim), (kv, s.model_dim), (kv, s.model_dim), (s.model_dim, s.attention_dim)]
    ffn = [(s.ffn_dim, s.model_dim)] * (2 if s.gated_ffn else 1) + [(s.model_dim, s.ffn_dim)]
    return attention + ffn


def weight_shapes(s: Shape) -> list[tuple[int, ...]]:
    """Every weight tensor: per layer the projections and two norm vectors; the final norm; the
    embedding, and the LM head where it is not tied to it."""
    layer = layer_matrices(s) + [(s.model_dim,), (s.model_dim,)]
    head = [] if s.tied_embeddings else [(s.vocab, s.model_dim)]
    return layer * s.layers + [(s.model_dim,), (s.vocab, s.model_dim)] + head


def trainable_shapes(s: Shape, method: str, pet_size: int | None) -> list[tuple[int, ...]]:
    """What a method trains: every weight (fmt), LoRA's A (r x in) and B (out x r) on each
    projection, or the soft prompt (prompt length x model dim)."""
    if method in ("fmt", "pretrain"):
        return weight_shapes(s)
    if method == "lora":
        return [shape for out, inp in layer_matrices(s) for shape in ((pet_size, inp), (out, pet_size))] * s.layers
    if method == "prompt":
        return [(pet_size, s.model_dim)]
    if method == "base":
        return []
    raise ValueError(f"unknown method {method!r}")


def count(shapes) -> int:
    return sum(math.prod(shape) for shape in shapes)


@lru_cache(maxsize=None)    # a grid asks for the same few shapes thousands of times
def parameters(s: Shape) -> int:
    return count(weight_shapes(s))


@lru_cache(maxsize=None)
def largest_unit(s: Shape) -> int:
    """Parameters of the largest FSDP unit: a decoder layer or the embedding."""
    return max(count(layer_matrices(s)) + 2 * s.model_dim, s.vocab * s.model_dim)


# ---- device memory, one function per term (bytes per GPU, or of the CPU process) ----

@lru_cache(maxsize=None)
def trainable_parameters(s: Shape, method: str, pet_size: int | None) -> int:
    return count(trainable_shapes(s, method, pet_size))


def pet_parameters(s: Shape, method: str, pet_size: int | None) -> int:
    """LoRA's or the soft prompt's parameters, beside the base model's; none for FMT and pretraining."""
    return trainable_parameters(s, method, pet_size) if method in ("lora", "prompt") else 0


def weights_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    """fp32 weights (the base model's, plus the PET parameters), sharded."""
    return FP32 * (parameters(s) + pet_parameters(s, method, pet_size)) / shards


def autocast_copies_bytes(s: Shape, training: bool, on_gpu: bool, shards: int) -> float:
    """bf16 copies of the weights that autocast makes: on one GPU, training keeps every one until
    backward (the matmuls save them); inference, and sharded jobs (whose gathered units are counted
    in fsdp_gathered_bytes), hold one unit's at a time."""
    if not on_gpu:
        return 0.0
    return BF16 * (parameters(s) if training and shards == 1 else largest_unit(s))


def gradients_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    """fp32 gradients of the trainable parameters only, sharded."""
    return FP32 * trainable_parameters(s, method, pet_size) / shards


@lru_cache(maxsize=None)
def optimizer_elements(s: Shape, method: str, pet_size: int | None) -> int:
    """Adafactor's factored second moment (no first moment: beta1 is off): a row and a column
    statistic per trainable matrix, a full one per vector; plus its step's temporaries."""
    shapes = trainable_shapes(s, method, pet_size)
    if not shapes:
        return 0
    state = sum(shape[0] + shape[1] if len(shape) == 2 else shape[0] for shape in shapes)
    return state + ADAFACTOR_STEP_TEMPORARIES * max(math.prod(shape) for shape in shapes)


def optimizer_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    return FP32 * optimizer_elements(s, method, pet_size) / shards


def activation_bytes_per_token_layer(s: Shape, compute_bytes: int) -> int:
    """What one decoder layer saves for backward, per token: the RMSNorm inputs and outputs (fp32:
    the residual stream stays fp32 under autocast; 2 per norm, 2 norms), and in the compute dtype
    the projections' cast inputs (q, k, v, gate, up: 5 x model dim), attention's saved q, k, v and
    output (2 x attention dim + 2 x head dim), o_proj's input (attention dim), and SwiGLU's gate,
    its SiLU, up and down_proj's input (4 x FFN dim)."""
    norms = FP32 * 4 * s.model_dim
    compute = 5 * s.model_dim + 3 * s.attention_dim + 2 * s.kv_heads * s.head_dim + 4 * s.ffn_dim
    return norms + compute_bytes * compute


def activations_bytes(s: Shape, tokens: int, training: bool, checkpointing: bool, compute_bytes: int) -> float:
    """Activations of a micro-batch of `tokens`. Training keeps every layer's (with activation
    checkpointing: each layer's fp32 input, and one layer's in full while it is recomputed);
    inference holds one layer's at a time."""
    per_layer = activation_bytes_per_token_layer(s, compute_bytes)
    if not training:
        return tokens * per_layer
    if checkpointing:
        return tokens * (s.layers * FP32 * s.model_dim + per_layer)
    return tokens * s.layers * per_layer


def logits_bytes(s: Shape, logit_tokens: int, training: bool, compute_bytes: int) -> float:
    """Vocabulary-sized logits of the positions the LM head runs on (pretraining: every position;
    finetuning and test loss: target positions only; decoding: the last position)."""
    copies = LOGIT_FP32_COPIES_TRAIN if training else LOGIT_FP32_COPIES_INFER
    return logit_tokens * s.vocab * (compute_bytes + copies * FP32)


def kv_cache_bytes(s: Shape, cached_tokens: int, compute_bytes: int) -> float:
    """Greedy decoding's key/value cache: kv_heads key and value heads per layer (one: multi-query)."""
    return cached_tokens * s.layers * 2 * s.kv_heads * s.head_dim * compute_bytes


def fsdp_gathered_bytes(s: Shape, shards: int) -> float:
    """Unsharded units in flight in a sharded job (none on one GPU)."""
    if shards == 1:
        return 0.0
    return largest_unit(s) * (FSDP_UNITS_GATHERED * BF16 + FP32)


@dataclass(frozen=True)
class DeviceMemory:
    """Peak memory of one GPU (or of the CPU process), in bytes, term by term."""
    weights: float
    autocast_copies: float
    gradients: float
    optimizer: float
    activations: float
    logits: float
    kv_cache: float
    fsdp_gathered: float
    context: float

    @property
    def total(self) -> float:
        return (self.weights + self.autocast_copies + self.gradients + self.optimizer + self.activations
                + self.logits + self.kv_cache + self.fsdp_gathered + self.context)


@dataclass(frozen=True)
class Workload:
    """What one job pushes through a model, per example of its batch (a pretraining window, a
    finetuning example, a test or transfer prompt)."""
    shape: Shape
    method: str                   # pretrain, fmt, lora, prompt (what trains), or base (nothing)
    pet_size: int | None
    training: bool
    tokens: int                   # tokens per example through the decoder
    logit_tokens: int             # positions per example the LM head runs on
    cached_tokens: int = 0        # KV-cache positions per example (decoding)


@lru_cache(maxsize=4096)     # the planner tries the same workloads on many GPU counts
def device_memory(w: Workload, micro_batch: int, shards: int, on_gpu: bool,
                  checkpointing: bool = False) -> DeviceMemory:
    compute_bytes = BF16 if on_gpu else FP32
    s = w.shape
    return DeviceMemory(
        weights=weights_bytes(s, w.method, w.pet_size, shards),
        autocast_copies=autocast_copies_bytes(s, w.training, on_gpu, shards),
        gradients=gradients_bytes(s, w.method, w.pet_size, shards) if w.training else 0.0,
        optimizer=optimizer_bytes(s, w.method, w.pet_size, shards) if w.training else 0.0,
        activations=activations_bytes(s, micro_batch * w.tokens, w.training, checkpointing, compute_bytes),
        logits=logits_bytes(s, micro_batch * w.logit_tokens, w.training, compute_bytes),
        kv_cache=kv_cache_bytes(s, micro_batch * w.cached_tokens, compute_bytes),
        fsdp_gathered=fsdp_gathered_bytes(s, shards),
        context=CUDA_CONTEXT_BYTES if on_gpu else 0.0,
    )


def per_example_bytes(w: Workload, on_gpu: bool, checkpointing: bool = False) -> float:
    """What one more example in the micro-batch adds (activations, logits and KV cache are linear)."""
    one = device_memory(w, 1, 1, on_gpu, checkpointing)
    return one.activations + one.logits + one.kv_cache


# ---- host memory of one process ----

def encoded_examples_bytes(examples: int, tokens_per_example: int) -> float:
    """Examples a job encodes once and holds (finetune.encode_split): int64 tokens and a tuple each."""
    return examples * (tokens_per_example * TOKEN_BYTES_HOST + EXAMPLE_OVERHEAD_BYTES)


def host_process_bytes(s: Shape, on_gpu: bool, data_bytes: float) -> float:
    """One process on the host: the libraries, its data, and one full fp32 copy of the weights
    (the base model is read on the host before it moves to the GPU or is sharded, and the final
    save_pretrained gathers it there). Not the GPU's working set: that stays on the GPU."""
    return HOST_BASELINE_BYTES + (HOST_CUDA_BYTES if on_gpu else 0.0) + data_bytes + FP32 * parameters(s)
