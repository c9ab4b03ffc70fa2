"""Peak memory of one job, term by term: what ftscale.plan.sizing sizes micro-batches, GPUs and host memory by.

Everything here is bytes, counted from the tensors the code allocates (ftscale.train.model, finetune,
pretrain, evaluate): weights, gradients, optimizer state, activations, logits, KV cache. Pure
Python on the config's size table (no torch), so `ftscale grid` and the Snakefile stay cheap.

How the jobs run, and so what is counted (each term checked against torch's MemTracker on the
real step under FakeTensorMode: bench/bench_memory.py, which prints planned over measured per job kind):
- A job on G > 1 GPUs shards weights, gradients and Adafactor's state G ways (FSDP2 full shard, each
  decoder layer a unit, the root the embedding and final norm) with MixedPrecisionPolicy: fp32
  shards, bf16 parameters gathered one unit at a time (the next prefetched), gradients reduced in
  fp32, no autocast. Activations are then bf16, apart from RMSNorm's fp32 upcast.
- A job on one GPU keeps fp32 weights and runs under bf16 autocast: the residual stream stays fp32,
  each matmul casts its input and weight to bf16, and training keeps every bf16 weight copy till
  backward.
- On the CPU everything is fp32 (no autocast).
- Packed rows get transformers' 4-D boolean block mask (a row's length per token, per layer), unless
  finetune.attention is packed (ftscale.train.packed_attention: no mask, K/V heads not repeated).
- The terms do not all live at once (DeviceMemory.total): the peak is at the last micro-batch's
  backward (its activations and logits, the earlier micro-batches' gradients) or at its end and the
  optimizer's step (every gradient, Adafactor's temporaries). Backward frees a layer's activations
  as it makes that layer's gradients: both are linear in the layers done, so the larger end wins.
- Terms under about 1% of a job's peak are left out: rotary tables, the final norm's activations,
  the optimizer's scalars.
(Past 300 lines: every term of the peak stays in this one module, so their sum reads in one place.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

GB = 1e9  # the unit of every figure shown (decimal: SLURM's --mem is MB)

# Bytes per element.
FP32 = 4  # weights, gradients, optimizer state; every activation on the CPU
BF16 = 2  # activations and weight copies under autocast on a GPU

# Logits are (tokens, vocabulary): the largest activation of a small model. Per logit, in
# training the peak is at the start of backward: the log-softmax the loss kept, the gradient of the
# loss and that of the log-softmax, all fp32 (the compute-dtype logits and their fp32 upcast are
# freed after forward); in inference the compute-dtype logits, their upcast and the log-softmax.
LOGIT_FP32_COPIES_TRAIN = 3
LOGIT_FP32_COPIES_INFER = 2

# FSDP2 keeps the unit being computed and the prefetched next one gathered (in bf16), plus one
# unit's fp32 reduce-scatter input; the root unit (embedding, tied LM head, final norm) stays
# gathered for the whole step (FSDP2 does not reshard the root after forward).
FSDP_UNITS_GATHERED = 2

# Adafactor's update allocates full-size temporaries of the parameter being stepped
# (transformers.Adafactor: grad**2 + eps, then the approximated update): two of the largest.
ADAFACTOR_STEP_TEMPORARIES = 2

CUDA_CONTEXT_BYTES = 1.0 * GB  # CUDA context, cuBLAS/cuDNN workspaces: outside the caching allocator
USABLE_GPU_FRACTION = 0.9  # the rest is the caching allocator's fragmentation

# Host memory of one process (one per GPU, or the one CPU process).
HOST_BASELINE_BYTES = 2.5 * GB  # Python, torch, transformers, peft resident before any model (measured)
HOST_CUDA_BYTES = 1.5 * GB  # CUDA runtime and kernels mapped on the host by a GPU process
EXAMPLE_OVERHEAD_BYTES = 200  # an encoded example held as a Python tuple of a numpy int64 array
TOKEN_BYTES_HOST = 8  # encoded examples are int64 (finetune.encode)


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
    kv_heads: int = 1  # multi-query attention
    gated_ffn: bool = True  # SwiGLU: gate, up and down projections
    tied_embeddings: bool = True  # the LM head is the embedding

    @classmethod
    def of(cls, config: dict, model: str) -> "Shape":
        return cls(**config["models"][model], vocab=config["data"]["tokenizer_vocab_size"])

    @property
    def attention_dim(self) -> int:  # query heads x head dim
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


@lru_cache(maxsize=None)  # a grid asks for the same few shapes thousands of times
def parameters(s: Shape) -> int:
    return count(weight_shapes(s))


@lru_cache(maxsize=None)
def largest_layer(s: Shape) -> int:
    """Parameters of a decoder layer (an FSDP unit)."""
    return count(layer_matrices(s)) + 2 * s.model_dim


def root_unit(s: Shape) -> int:
    """Parameters of FSDP's root unit: the embedding, an untied LM head, the final norm."""
    return s.vocab * s.model_dim * (1 if s.tied_embeddings else 2) + s.model_dim


def largest_unit(s: Shape) -> int:
    """Parameters of the largest FSDP unit: a decoder layer or the root."""
    return max(largest_layer(s), root_unit(s))


# ---- device memory, one function per term (bytes per GPU, or of the CPU process) ----


@lru_cache(maxsize=None)
def trainable_parameters(s: Shape, method: str, pet_size: int | None) -> int:
    return count(trainable_shapes(s, method, pet_size))


def pet_parameters(s: Shape, method: str, pet_size: int | None) -> int:
    """LoRA's or the soft prompt's parameters, beside the base model's; none for FMT and pretraining."""
    return trainable_parameters(s, method, pet_size) if method in ("lora", "prompt") else 0


def weights_bytes(s: Shape, method: str, pet_size: int | None, shards: int, element: int = FP32) -> float:
    """The weights (the base model's, plus the PET parameters), sharded: fp32, or `element` bytes
    each (BF16 where evaluation loads them so: evaluate.weights_dtype)."""
    return element * (parameters(s) + pet_parameters(s, method, pet_size)) / shards


def autocast_copies_bytes(s: Shape, training: bool, on_gpu: bool, shards: int) -> float:
    """bf16 copies of the weights that autocast makes on one GPU: training keeps every one until
    backward (the matmuls save them); inference holds one unit's at a time. Sharded jobs have no
    autocast: their bf16 parameters are FSDP's gathered units (fsdp_gathered_bytes)."""
    if not on_gpu or shards > 1:
        return 0.0
    return BF16 * (parameters(s) if training else largest_unit(s))


def gradients_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    """fp32 gradients of the trainable parameters only, sharded."""
    return FP32 * trainable_parameters(s, method, pet_size) / shards


def accumulated_gradients_bytes(s: Shape, method: str, pet_size: int | None, shards: int, passes: int) -> float:
    """The gradients of a step's earlier micro-batches, live through the last one's backward (none
    in a step of one pass): FMT and pretraining reduce them after every micro-batch, so sharded;
    LoRA and prompt tuning defer the reduction to the last (ftscale.train.distributed.sync_gradients),
    so each rank holds them unsharded, fp32."""
    if passes == 1:
        return 0.0
    return gradients_bytes(s, method, pet_size, shards if method in ("fmt", "pretrain") else 1)


@lru_cache(maxsize=None)
def optimizer_state_elements(s: Shape, method: str, pet_size: int | None) -> int:
    """Adafactor's factored second moment (no first moment: beta1 is off): a row and a column
    statistic per trainable matrix, a full one per vector."""
    return sum(shape[0] + shape[1] if len(shape) == 2 else shape[0] for shape in trainable_shapes(s, method, pet_size))


def optimizer_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    """Adafactor's state, sharded: held through the whole step."""
    return FP32 * optimizer_state_elements(s, method, pet_size) / shards


def optimizer_step_bytes(s: Shape, method: str, pet_size: int | None, shards: int) -> float:
    """The step's temporaries, sharded: live only in optimizer.step(), after backward."""
    shapes = trainable_shapes(s, method, pet_size)
    return FP32 * ADAFACTOR_STEP_TEMPORARIES * max((math.prod(shape) for shape in shapes), default=0) / shards


def precision(on_gpu: bool, shards: int) -> str:
    """How a job computes: "mixed" (sharded, bf16 parameters), "autocast" (one GPU) or "fp32" (CPU)."""
    return "fp32" if not on_gpu else ("autocast" if shards == 1 else "mixed")


def activation_bytes_per_token_layer(
    s: Shape, how: str, method: str, pet_size: int | None, row_tokens: int, packed_attention: bool = False
) -> int:
    """What one decoder layer saves for backward, per token (Llama, read off the saved tensors):

    every method: the block mask (row_tokens x 1 byte), RMSNorm's fp32 inputs (2 x 4 x model dim) and
    rsqrt (2 x 4), attention's log-sum-exp (4 x heads), and in compute dtype c the SwiGLU's gate,
    SiLU and up (3F); q, k, v and attention's output: c x (2 x attention dim + 2 x kv dim) where the
    compute is bf16 or fp32 throughout; under autocast k is cast after repeat_kv expanded it to every
    head, so c x (3 x attention dim + kv dim).
    What the trainable weights add, c x: FMT the norms' outputs and their normalised inputs (4 x model
    dim) and down_proj's input (F); LoRA the norms' outputs (2 x model dim), down_proj's input and
    A's outputs (rank per projection). Under autocast FMT and LoRA add instead each d-input
    projection's bf16 cast of its input (5 x model dim), FMT the norms' fp32 normalised inputs
    (8 x model dim) and down's input (F), LoRA the casts for o and down (attention dim + F) and A's
    outputs. Prompt tuning adds nothing: the frozen layers need no inputs.
    packed_attention (finetune.attention packed): no block mask, and k never expanded, under autocast
    too (its q, k and v are cast to bf16 as they are): c x (2 x attention dim + 2 x kv dim)."""
    d, attention, kv, ffn = s.model_dim, s.attention_dim, s.kv_heads * s.head_dim, s.ffn_dim
    projections, d_inputs = len(layer_matrices(s)), 3 + (2 if s.gated_ffn else 1)
    rank = pet_size if method == "lora" else 0
    compute = FP32 if how == "fp32" else BF16
    common = (
        (0 if packed_attention else row_tokens)
        + 2 * FP32
        + FP32 * s.heads
        + compute * (3 if s.gated_ffn else 1) * ffn
        + 2 * FP32 * d
    )
    if how == "autocast":
        common += compute * ((2 * attention + 2 * kv) if packed_attention else (3 * attention + kv))
        trained = {
            "fmt": 2 * FP32 * d + compute * (d_inputs * d + ffn),
            "lora": compute * (d_inputs * d + attention + ffn + projections * rank),
        }
    else:
        common += compute * (2 * attention + 2 * kv)
        trained = {"fmt": compute * (4 * d + ffn), "lora": compute * (2 * d + ffn + projections * rank)}
    trained["pretrain"] = trained["fmt"]
    return common + trained.get(method, 0)


def activations_bytes(s: Shape, tokens: int, training: bool, checkpointing: bool, per_token_layer: int) -> float:
    """Activations of a micro-batch of `tokens`. Training keeps every layer's (with activation
    checkpointing: each layer's fp32 input, and one layer's in full while it is recomputed);
    inference holds one layer's at a time."""
    if not training:
        return tokens * per_token_layer
    if checkpointing:
        return tokens * (s.layers * FP32 * s.model_dim + per_token_layer)
    return tokens * s.layers * per_token_layer


def logits_bytes(s: Shape, logit_tokens: int, training: bool, compute_bytes: int) -> float:
    """Vocabulary-sized logits of the positions the LM head runs on (pretraining: every position;
    finetuning and test loss: target positions only; decoding: the last position)."""
    per_logit = LOGIT_FP32_COPIES_TRAIN * FP32 if training else compute_bytes + LOGIT_FP32_COPIES_INFER * FP32
    return logit_tokens * s.vocab * per_logit


def kv_cache_bytes(s: Shape, cached_tokens: int, compute_bytes: int) -> float:
    """Greedy decoding's key/value cache: kv_heads key and value heads per layer (one: multi-query)."""
    return cached_tokens * s.layers * 2 * s.kv_heads * s.head_dim * compute_bytes


def fsdp_gathered_bytes(s: Shape, shards: int, trains_layers: bool = True) -> float:
    """Unsharded parameters in flight in a sharded job (none on one GPU): the root unit, two layers
    in bf16 and, where the layers train (FMT, LoRA, pretraining), one layer's fp32 reduce-scatter input."""
    if shards == 1:
        return 0.0
    return BF16 * root_unit(s) + largest_layer(s) * (FSDP_UNITS_GATHERED * BF16 + (FP32 if trains_layers else 0))


@dataclass(frozen=True)
class DeviceMemory:
    """Peak memory of one GPU (or of the CPU process), in bytes, term by term.

    total = weights + optimizer + fsdp_gathered + context + max(backward, step), where
    backward = autocast_copies + activations + logits + kv_cache + accumulated_gradients (the last
    micro-batch's backward as it starts) and step = gradients + optimizer_step (backward's end and the
    optimizer's step). Backward frees activations and bf16 copies layer by layer as it makes the
    gradients (checked: bench/bench_memory.py; tests/unit/test_memory_phases.py)."""

    weights: float
    autocast_copies: float
    gradients: float
    accumulated_gradients: float
    optimizer: float
    optimizer_step: float
    activations: float
    logits: float
    kv_cache: float
    fsdp_gathered: float
    context: float

    @property
    def backward(self) -> float:
        return self.autocast_copies + self.activations + self.logits + self.kv_cache + self.accumulated_gradients

    @property
    def step(self) -> float:
        return self.gradients + self.optimizer_step

    @property
    def total(self) -> float:
        return self.weights + self.optimizer + self.fsdp_gathered + self.context + max(self.backward, self.step)


@dataclass(frozen=True)
class Workload:
    """What one job pushes through a model, per example of its batch (a pretraining window, a
    finetuning example, a test or transfer prompt)."""

    shape: Shape
    method: str  # pretrain, fmt, lora, prompt (what trains), or base (nothing)
    pet_size: int | None
    training: bool
    tokens: int  # tokens per example through the decoder
    logit_tokens: int  # positions per example the LM head runs on
    cached_tokens: int = 0  # KV-cache positions per example (decoding)
    packed_attention: bool = False  # finetune.attention packed: no block mask, K/V not repeated
    weight_bytes: int = FP32  # per weight: BF16 where evaluation loads bf16 weights (then no autocast copies)


@lru_cache(maxsize=4096)  # the planner tries the same workloads on many GPU counts
def device_memory(
    w: Workload, micro_batch: int, shards: int, on_gpu: bool, checkpointing: bool = False, passes: int = 1
) -> DeviceMemory:
    """The peak of one step of `passes` micro-batches of `micro_batch` examples (or packed rows)."""
    how = precision(on_gpu, shards)
    compute_bytes = FP32 if how == "fp32" else BF16
    s = w.shape
    per_token_layer = activation_bytes_per_token_layer(
        s, how, w.method if w.training else "base", w.pet_size, w.tokens, w.packed_attention
    )
    return DeviceMemory(
        weights=weights_bytes(s, w.method, w.pet_size, shards, w.weight_bytes),
        autocast_copies=autocast_copies_bytes(s, w.training, on_gpu, shards) if w.weight_bytes == FP32 else 0.0,
        gradients=gradients_bytes(s, w.method, w.pet_size, shards) if w.training else 0.0,
        accumulated_gradients=accumulated_gradients_bytes(s, w.method, w.pet_size, shards, passes)
        if w.training
        else 0.0,
        optimizer=optimizer_bytes(s, w.method, w.pet_size, shards) if w.training else 0.0,
        optimizer_step=optimizer_step_bytes(s, w.method, w.pet_size, shards) if w.training else 0.0,
        activations=activations_bytes(s, micro_batch * w.tokens, w.training, checkpointing, per_token_layer),
        logits=logits_bytes(s, micro_batch * w.logit_tokens, w.training, compute_bytes),
        kv_cache=kv_cache_bytes(s, micro_batch * w.cached_tokens, compute_bytes),
        fsdp_gathered=fsdp_gathered_bytes(s, shards, w.method in ("fmt", "pretrain", "lora")),
        context=CUDA_CONTEXT_BYTES if on_gpu else 0.0,
    )


# ---- host memory of one process ----


def encoded_examples_bytes(examples: int, tokens_per_example: int) -> float:
    """Examples a job encodes once and holds (finetune.encode_split): int64 tokens and a tuple each."""
    return examples * (tokens_per_example * TOKEN_BYTES_HOST + EXAMPLE_OVERHEAD_BYTES)


def host_process_bytes(on_gpu: bool, data_bytes: float) -> float:
    """One process on the host, without the model's weights: the libraries and its data. Not the
    GPU's working set: that stays on the GPU."""
    return HOST_BASELINE_BYTES + (HOST_CUDA_BYTES if on_gpu else 0.0) + data_bytes


def host_weights_bytes(s: Shape, sharded: bool) -> float:
    """The fp32 weights on the host of the job's first process (rank 0), the only one that holds
    them. One process: one copy (read on the host before it moves to the GPU; saved from there).
    Sharded: the other ranks build the model on the meta device (no memory) and rank 0 broadcasts
    its copy; at the end it gathers the whole state dict to its host and puts it into a plain copy
    for save_pretrained: two copies (distributed.shard, distributed.unsharded)."""
    return (2 if sharded else 1) * FP32 * parameters(s)
