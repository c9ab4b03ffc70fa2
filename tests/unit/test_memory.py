"""The memory model (ftscale.plan.memory) term by term, against numbers worked out by hand for a small
shape: 2 layers, 2 heads of 4, FFN 16, model dim 8, vocabulary 32.

Per layer: q 8x8, k 4x8, v 4x8, o 8x8, gate 16x8, up 16x8, down 8x16 (576) and two norms of 8:
592; two layers 1184, the final norm 8, the tied embedding 32x8 = 256: 1448 parameters."""
import pytest

from ftscale.plan import memory
from ftscale.plan.memory import Shape, Workload

SMALL = Shape(layers=2, heads=2, head_dim=4, ffn_dim=16, model_dim=8, vocab=32)


def test_parameters_and_the_largest_fsdp_unit():
    assert memory.parameters(SMALL) == 1448
    assert memory.largest_unit(SMALL) == 592                 # a layer: larger than the 256 of the embedding


def test_trainable_parameters_per_method():
    assert memory.trainable_parameters(SMALL, "fmt", None) == 1448
    # LoRA rank 2, A (2 x in) and B (out x 2) per projection: q 32, k 24, v 24, o 32, gate 48, up 48,
    # down 48 = 256 per layer
    assert memory.trainable_parameters(SMALL, "lora", 2) == 512
    assert memory.trainable_parameters(SMALL, "prompt", 3) == 24   # 3 x 8
    assert memory.trainable_parameters(SMALL, "base", None) == 0


def test_weights_gradients_and_optimizer_state():
    assert memory.weights_bytes(SMALL, "fmt", None, shards=1) == 4 * 1448
    assert memory.weights_bytes(SMALL, "lora", 2, shards=1) == 4 * (1448 + 512)   # base and adapters
    assert memory.weights_bytes(SMALL, "fmt", None, shards=2) == 4 * 1448 / 2
    assert memory.gradients_bytes(SMALL, "lora", 2, shards=1) == 4 * 512
    # Adafactor, FMT: rows + columns per matrix (q 16, k 12, v 12, o 16, gate 24, up 24, down 24) and
    # both norms (16): 144 per layer, 288; final norm 8; embedding 32 + 8: 336 elements; plus two
    # temporaries of the largest tensor (the 256-element embedding): 848 elements, fp32
    assert memory.optimizer_bytes(SMALL, "fmt", None, shards=1) == 4 * 848
    # prompt 3 x 8: 3 + 8 statistics, two temporaries of 24
    assert memory.optimizer_bytes(SMALL, "prompt", 3, shards=1) == 4 * (11 + 48)
    assert memory.optimizer_bytes(SMALL, "base", None, shards=1) == 0


def test_activations_logits_and_kv_cache():
    # Per token and layer on a GPU: norms 4 x 8 fp32 = 128 bytes; bf16: 5 x 8 + 3 x 8 + 2 x 4 + 4 x 16
    # = 136 elements, 272 bytes; 400 in all. On the CPU the 136 are fp32: 128 + 544 = 672.
    assert memory.activation_bytes_per_token_layer(SMALL, memory.BF16) == 400
    assert memory.activation_bytes_per_token_layer(SMALL, memory.FP32) == 672
    assert memory.activations_bytes(SMALL, 10, training=True, checkpointing=False, compute_bytes=2) == 10 * 2 * 400
    # checkpointing: each layer's fp32 input (32 bytes) and one layer recomputed in full
    assert memory.activations_bytes(SMALL, 10, training=True, checkpointing=True, compute_bytes=2) == 10 * (2 * 32 + 400)
    assert memory.activations_bytes(SMALL, 10, training=False, checkpointing=False, compute_bytes=2) == 10 * 400
    # logits of 5 positions x 32: bf16 plus three fp32 copies in training (14 bytes), two in inference (10)
    assert memory.logits_bytes(SMALL, 5, training=True, compute_bytes=2) == 5 * 32 * 14
    assert memory.logits_bytes(SMALL, 5, training=False, compute_bytes=2) == 5 * 32 * 10
    # KV cache: 10 positions x 2 layers x (key + value) x head dim 4 x bf16
    assert memory.kv_cache_bytes(SMALL, 10, compute_bytes=2) == 320


def test_autocast_copies_and_fsdp_units():
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=True, shards=1) == 2 * 1448
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=True, shards=2) == 2 * 592
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=False, shards=1) == 0
    assert memory.fsdp_gathered_bytes(SMALL, shards=1) == 0
    assert memory.fsdp_gathered_bytes(SMALL, shards=2) == 592 * (2 * 2 + 4)   # two bf16 units, one fp32 gradient


def test_device_memory_sums_the_terms_and_grows_linearly_with_the_micro_batch():
    work = Workload(SMALL, "fmt", None, training=True, tokens=10, logit_tokens=5)
    one, three = (memory.device_memory(work, m, shards=1, on_gpu=True) for m in (1, 3))
    # weights, bf16 copies, gradients, optimizer state, CUDA context; per example: activations of 10
    # tokens (2 layers x 400 bytes) and logits of 5 positions (5 x 32 x 14 bytes)
    static = 4 * 1448 + 2 * 1448 + 4 * 1448 + 4 * 848 + memory.CUDA_CONTEXT_BYTES
    assert one.total == pytest.approx(static + 8000 + 2240)
    assert three.total == pytest.approx(static + 3 * (8000 + 2240))
    assert memory.per_example_bytes(work, on_gpu=True) == 8000 + 2240


def test_host_memory_is_the_process_its_data_and_one_copy_of_the_weights():
    assert memory.encoded_examples_bytes(100, 50) == 100 * (50 * 8 + memory.EXAMPLE_OVERHEAD_BYTES)
    assert memory.host_process_bytes(SMALL, on_gpu=True, data_bytes=1000) == pytest.approx(
        memory.HOST_BASELINE_BYTES + memory.HOST_CUDA_BYTES + 1000 + 4 * 1448)
