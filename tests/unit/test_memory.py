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
    assert memory.largest_unit(SMALL) == 592  # a layer: larger than the 256 of the embedding


def test_trainable_parameters_per_method():
    assert memory.trainable_parameters(SMALL, "fmt", None) == 1448
    # LoRA rank 2, A (2 x in) and B (out x 2) per projection: q 32, k 24, v 24, o 32, gate 48, up 48,
    # down 48 = 256 per layer
    assert memory.trainable_parameters(SMALL, "lora", 2) == 512
    assert memory.trainable_parameters(SMALL, "prompt", 3) == 24  # 3 x 8
    assert memory.trainable_parameters(SMALL, "base", None) == 0


def test_weights_gradients_and_optimizer_state():
    assert memory.weights_bytes(SMALL, "fmt", None, shards=1) == 4 * 1448
    assert memory.weights_bytes(SMALL, "lora", 2, shards=1) == 4 * (1448 + 512)  # base and adapters
    assert memory.weights_bytes(SMALL, "fmt", None, shards=2) == 4 * 1448 / 2
    assert memory.gradients_bytes(SMALL, "lora", 2, shards=1) == 4 * 512
    # Adafactor, FMT: rows + columns per matrix (q 16, k 12, v 12, o 16, gate 24, up 24, down 24) and
    # both norms (16): 144 per layer, 288; final norm 8; embedding 32 + 8: 336 elements, fp32; its
    # step's two temporaries of the largest tensor (the 256-element embedding)
    assert memory.optimizer_bytes(SMALL, "fmt", None, shards=1) == 4 * 336
    assert memory.optimizer_step_bytes(SMALL, "fmt", None, shards=2) == 4 * 2 * 256 / 2
    # prompt 3 x 8: 3 + 8 statistics, two temporaries of 24
    assert memory.optimizer_bytes(SMALL, "prompt", 3, shards=1) == 4 * 11
    assert memory.optimizer_step_bytes(SMALL, "prompt", 3, shards=1) == 4 * 48
    assert memory.optimizer_bytes(SMALL, "base", None, shards=1) == 0
    assert memory.optimizer_step_bytes(SMALL, "base", None, shards=1) == 0
    # a step's earlier passes: FMT's reduced every pass (sharded), LoRA's deferred (unsharded)
    assert memory.accumulated_gradients_bytes(SMALL, "fmt", None, shards=2, passes=1) == 0
    assert memory.accumulated_gradients_bytes(SMALL, "fmt", None, shards=2, passes=2) == 4 * 1448 / 2
    assert memory.accumulated_gradients_bytes(SMALL, "lora", 2, shards=2, passes=3) == 4 * 512


def test_activations_per_token_and_layer_by_precision_and_method():
    """Against the saved tensors listed by hand (row of 10 tokens, LoRA rank 2). Every method: mask 10,
    two rsqrt 8, log-sum-exp 4 x 2 heads = 8, fp32 norm inputs 2 x 4 x 8 = 64, SwiGLU 3 x 16 in the
    compute dtype (96 bytes in bf16)."""
    bf16 = 10 + 8 + 8 + 64 + 96  # 186
    # bf16 throughout (sharded): q, k, v and attention's output 2 x (2 x 8 + 2 x 4) = 48
    assert memory.activation_bytes_per_token_layer(SMALL, "mixed", "prompt", 3, 10) == bf16 + 48
    # FMT adds the norms' outputs and normalised inputs (4 x 8) and down's input (16): 2 x 48 = 96
    assert memory.activation_bytes_per_token_layer(SMALL, "mixed", "fmt", None, 10) == bf16 + 48 + 96
    assert memory.activation_bytes_per_token_layer(SMALL, "mixed", "pretrain", None, 10) == bf16 + 48 + 96
    # LoRA: the norms' outputs (2 x 8), down's input (16), A's outputs (7 x 2): 2 x 46 = 92
    assert memory.activation_bytes_per_token_layer(SMALL, "mixed", "lora", 2, 10) == bf16 + 48 + 92
    # autocast (one GPU): k cast after repeat_kv, 2 x (3 x 8 + 4) = 56; FMT adds the fp32 normalised
    # inputs (2 x 4 x 8 = 64) and bf16 casts of five inputs and down's input (2 x (40 + 16) = 112);
    # LoRA the five casts, o's and down's (2 x (40 + 8 + 16 + 14) = 156)
    assert memory.activation_bytes_per_token_layer(SMALL, "autocast", "fmt", None, 10) == bf16 + 56 + 64 + 112
    assert memory.activation_bytes_per_token_layer(SMALL, "autocast", "lora", 2, 10) == bf16 + 56 + 156
    # fp32 (CPU): SwiGLU 3 x 16 x 4 = 192, attention 4 x 24 = 96, FMT 4 x 48 = 192
    assert memory.activation_bytes_per_token_layer(SMALL, "fp32", "fmt", None, 10) == 10 + 8 + 8 + 64 + 192 + 96 + 192
    assert memory.precision(on_gpu=True, shards=4) == "mixed"
    assert memory.precision(on_gpu=True, shards=1) == "autocast"
    assert memory.precision(on_gpu=False, shards=1) == "fp32"


def test_activations_logits_and_kv_cache():
    assert memory.activations_bytes(SMALL, 10, training=True, checkpointing=False, per_token_layer=400) == 10 * 2 * 400
    # checkpointing: each layer's fp32 input (32 bytes) and one layer recomputed in full
    assert memory.activations_bytes(SMALL, 10, training=True, checkpointing=True, per_token_layer=400) == 10 * (
        2 * 32 + 400
    )
    assert memory.activations_bytes(SMALL, 10, training=False, checkpointing=False, per_token_layer=400) == 10 * 400
    # logits of 5 positions x 32: three fp32 copies in training (12 bytes), bf16 + two fp32 in inference (10)
    assert memory.logits_bytes(SMALL, 5, training=True, compute_bytes=2) == 5 * 32 * 12
    assert memory.logits_bytes(SMALL, 5, training=False, compute_bytes=2) == 5 * 32 * 10
    # KV cache: 10 positions x 2 layers x (key + value) x head dim 4 x bf16
    assert memory.kv_cache_bytes(SMALL, 10, compute_bytes=2) == 320


def test_autocast_copies_and_fsdp_units():
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=True, shards=1) == 2 * 1448
    assert memory.autocast_copies_bytes(SMALL, training=False, on_gpu=True, shards=1) == 2 * 592
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=True, shards=2) == 0  # no autocast when sharded
    assert memory.autocast_copies_bytes(SMALL, training=True, on_gpu=False, shards=1) == 0
    assert memory.fsdp_gathered_bytes(SMALL, shards=1) == 0
    # the root (embedding 256 + final norm 8) in bf16, two bf16 layers of 592, one layer's fp32 reduce-scatter input
    assert memory.fsdp_gathered_bytes(SMALL, shards=2) == 2 * 264 + 592 * (2 * 2 + 4)
    assert memory.fsdp_gathered_bytes(SMALL, shards=2, trains_layers=False) == 2 * 264 + 592 * 2 * 2


def test_device_memory_is_the_larger_of_backward_and_the_step():
    work = Workload(SMALL, "fmt", None, training=True, tokens=10, logit_tokens=5)
    one, three = (memory.device_memory(work, m, shards=1, on_gpu=True) for m in (1, 3))
    # held throughout: fp32 weights, Adafactor's state, the CUDA context
    held = 4 * 1448 + 4 * 336 + memory.CUDA_CONTEXT_BYTES
    # backward of one example: the bf16 copies, activations of 10 tokens (autocast FMT: 2 layers x 418
    # bytes, above), logits of 5 positions x 32 x 12; the step: fp32 gradients, two temporaries of 256
    backward, step = 2 * 1448 + 10 * 2 * 418 + 1920, 4 * 1448 + 4 * 2 * 256
    assert (one.backward, one.step) == (backward, step)
    assert one.total == pytest.approx(held + backward)  # backward's 13176 bytes, not the step's 7840
    # a row of one token: the step's gradients outweigh backward
    short = memory.device_memory(Workload(SMALL, "fmt", None, True, tokens=1, logit_tokens=1), 1, 1, on_gpu=True)
    assert short.backward < step and short.total == pytest.approx(held + step)
    assert three.total == pytest.approx(held + backward + 2 * (10 * 2 * 418 + 1920))  # backward's
    # in two passes, the first's gradients live through the second's backward
    two_passes = memory.device_memory(work, 1, shards=1, on_gpu=True, passes=2)
    assert two_passes.total == pytest.approx(held + backward + 4 * 1448)
    # sharded over 2: the mixed-precision activations (330 bytes), FSDP's gathered units held throughout
    sharded = memory.device_memory(work, 3, shards=2, on_gpu=True)
    assert sharded.backward == pytest.approx(3 * (10 * 2 * 330 + 1920))
    assert sharded.total - sharded.backward == pytest.approx(
        (4 * 1448 + 4 * 336) / 2 + memory.fsdp_gathered_bytes(SMALL, 2) + memory.CUDA_CONTEXT_BYTES
    )


def test_the_corrected_plan_against_the_measured_peaks():
    """bench/bench_memory.py's measurements at the paper's shapes (torch MemTracker on the real FSDP2
    step under FakeTensorMode, 2026-12-03, HSDP: sharded over a node's 8 GPUs): the planned peak
    without the CUDA context lies within 10%. Summing every term (gradients and Adafactor's
    temporaries beside the activations) gave 1.256 for 16B FMT."""
    from pathlib import Path

    from ftscale import config
    from ftscale.plan import grid, sizing

    paper = config.load(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
    pretrain, cluster = paper["pretrain"], paper["cluster"]

    def planned_gb(work, gpus, micro, batch):
        shards = sizing.fsdp_shards(cluster, gpus)
        planned = memory.device_memory(work, micro, shards, on_gpu=True, passes=batch // gpus // micro)
        return (planned.total - planned.context) / 1e9

    for model, gpus, micro, measured_gb in (("1B", 64, 8, 18.41), ("16B", 64, 4, 62.38)):
        work = Workload(Shape.of(paper, model), "pretrain", None, True, pretrain["seq_len"], pretrain["seq_len"])
        assert 0.9 < planned_gb(work, gpus, micro, pretrain["batch_size"]) / measured_gb < 1.1, model
    conditions = grid.expand_conditions(paper)
    for condition, gpus, micro, measured_gb in (
        ("translation_ende/1B-283000000000tok/fmt/df100000", 4, 32, 33.20),
        ("summarization/16B-283000000000tok/fmt/df100000", 64, 2, 27.98),
        ("translation_enzh/16B-206000000000tok/lora-4/df8000", 4, 4, 37.45),
        ("summarization/16B-283000000000tok/prompt-100/df8000", 8, 2, 22.80),
        ("summarization/1B-283000000000tok/lora-128/df8000", 1, 16, 32.47),  # one GPU: autocast
        ("summarization/1B-283000000000tok/prompt-600/df8000", 1, 16, 36.41),
    ):
        c = conditions[condition]
        task = paper["tasks"][c.task]
        work = Workload(
            Shape.of(paper, c.model),
            c.method,
            c.pet_size,
            True,
            sizing.example_tokens(paper, c.task) + sizing.prompt_length(c),
            task["max_target_tokens"] + 1,
        )
        batch = paper["finetune"]["methods"][c.method]["batch_size"]
        assert 0.9 < planned_gb(work, gpus, micro, batch) / measured_gb < 1.1, condition
    # evaluation of 16B prompt tuning on one GPU, 32 examples of summarization (extrapolated from 2, 4
    # and 6 of its 40 layers: 9.978, 12.935, 15.892 GB, exactly linear)
    c = conditions["summarization/16B-283000000000tok/prompt-100/df8000"]
    task = paper["tasks"][c.task]
    work = Workload(
        Shape.of(paper, c.model),
        c.method,
        c.pet_size,
        False,
        sizing.example_tokens(paper, c.task) + c.pet_size,
        task["max_target_tokens"] + 1,
        cached_tokens=task["max_source_tokens"] + 2 + c.pet_size + paper["evaluate"]["max_new_tokens"],
    )
    planned = memory.device_memory(work, 32, 1, on_gpu=True)
    assert 0.9 < (planned.total - planned.context) / 1e9 / 66.16 < 1.1


def test_host_memory_is_each_process_and_its_data_plus_rank_zeros_weights():
    assert memory.encoded_examples_bytes(100, 50) == 100 * (50 * 8 + memory.EXAMPLE_OVERHEAD_BYTES)
    assert memory.host_process_bytes(on_gpu=True, data_bytes=1000) == pytest.approx(
        memory.HOST_BASELINE_BYTES + memory.HOST_CUDA_BYTES + 1000
    )
    # SMALL has 1,448 parameters: one fp32 copy for one process, two on rank 0 of a sharded job
    # (the source it broadcasts at the start; the gathered state dict and the plain copy at the end)
    assert memory.host_weights_bytes(SMALL, sharded=False) == 4 * 1448
    assert memory.host_weights_bytes(SMALL, sharded=True) == 2 * 4 * 1448


def test_a_sharded_jobs_node_holds_the_weights_once_not_per_process():
    """configs/paper.yaml's 16B pretraining: 8 ranks a node. Before the meta-device start every rank
    held a 64 GB fp32 copy (510 GB a node); now rank 0 alone holds two."""
    from pathlib import Path

    from ftscale import config
    from ftscale.plan import sizing

    paper = config.load(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
    job = sizing.pretrain_job(paper, "16B", 283_000_000_000)
    weights = memory.host_weights_bytes(Shape.of(paper, "16B"), sharded=True)
    assert job.gpus == 64 and weights == pytest.approx(119.6e9, rel=1e-3)  # 2 x 4 bytes x 14.95B
    # rank 0's two copies and 8 processes of 2.5 + 1.5 GB and their data: 152 GB, not 510
    assert weights + 8 * 4e9 <= job.host_memory_bytes < 160e9
