"""Peak memory per GPU of each job kind at the paper's shapes, measured on the CPU, against the plan
(ftscale.plan.memory, ftscale.plan.sizing). Prints figures and merges `memory_planned_over_measured`
(job kind -> planned / measured) into results/bench/summary.json; no assertions.

Which jobs: for pretraining, FMT, LoRA and prompt tuning at 1B and 16B, and evaluation at 16B, the
job of configs/paper.yaml with the largest planned peak, at its planned micro-batch and GPU count.

How it is measured: the project's real model (ftscale.train.model), its real step (pretrain's or
finetune's accumulate_gradients over this rank's share of one batch, then Adafactor's step;
evaluation: one batch of test loss and of greedy decoding), every tensor a FakeTensor (no memory,
no compute), the GPUs a fake process group of the planned world size (this process is rank 0).
torch's MemTracker counts every storage the step allocates and frees; the peak is its largest total.
- Sharded jobs (more than one GPU): FSDP2, each decoder layer a unit and the root the rest, with
  MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32) and no autocast: the target set-up of
  issue 25, through the training code's own ftscale.train.distributed.shard_units.
- One-GPU jobs: the model as the code runs it there, fp32 weights under bf16 autocast.
One-GPU jobs: ftscale.train.model.autocast(model) enables autocast for a model on a GPU only; on the
fake CPU model the step's own contexts are made to enable the CPU's bf16 autocast (what a GPU gets).
Data-dependent values have no value under FakeTensorMode; KnownValues answers them: the number of
target positions a boolean mask selects (known from the batch built), and any scalar read to the
host (Adafactor's RMS, decoding's stopping test: never finished, so decoding runs all its steps).
transformers sees FakeTensors as traced, so it always builds the packed-sequence mask: the dense
4-D mask and the K/V heads repeated that packed rows of real data get (issue 25).
Not seen here: the CUDA context (the plan's `context` term is left out of the ratio) and the caching
allocator's fragmentation (cluster memory is planned at USABLE_GPU_FRACTION of the GPU).
(Past 300 lines: the job selection, the fake set-up and the step are one measurement, kept together.)

Usage: .venv/bin/python bench/bench_memory.py [--quick] [--kinds pretrain-16B ...] [--layers N]
  --quick: tiny shapes (the test suite runs it: tests/unit/test_bench_memory.py)
  --layers N: measure at N and 2N decoder layers and extrapolate each peak linearly to the model's
  own layer count, checked at 3N (by default only SCALED's kinds, at paper shapes: see SCALED).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import summary as bench_summary  # noqa: E402  bench/summary.py
import torch  # noqa: E402
from torch.distributed._tools.mem_tracker import MemTracker  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

PAPER = ROOT / "configs" / "paper.yaml"
KINDS = [
    "pretrain-1B",
    "pretrain-16B",
    "fmt-1B",
    "fmt-16B",
    "lora-1B",
    "lora-16B",
    "prompt-1B",
    "prompt-16B",
    "evaluate-16B",
]

# --quick: the paper's grid at tiny shapes, jobs of at least 2 GPUs (so sharding runs too)
QUICK = {
    "models": {
        "1B": {"layers": 2, "heads": 4, "head_dim": 16, "ffn_dim": 128, "model_dim": 64},
        "2B": {"layers": 2, "heads": 4, "head_dim": 16, "ffn_dim": 160, "model_dim": 64},
        "4B": {"layers": 2, "heads": 4, "head_dim": 16, "ffn_dim": 192, "model_dim": 64},
        "8B": {"layers": 3, "heads": 4, "head_dim": 16, "ffn_dim": 192, "model_dim": 96},
        "16B": {"layers": 3, "heads": 6, "head_dim": 16, "ffn_dim": 256, "model_dim": 96},
    },
    "vocab": 512,
    "source": 24,
    "target": 16,
    "seq_len": 64,
    "batch": 8,
    "new_tokens": 8,
    "gpus": 2,
}


def quick_config(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["models"] = QUICK["models"]
    config["data"]["tokenizer_vocab_size"] = QUICK["vocab"]
    for task in config["tasks"].values():
        task["max_source_tokens"], task["max_target_tokens"] = QUICK["source"], QUICK["target"]
    config["pretrain"].update(seq_len=QUICK["seq_len"], batch_size=QUICK["batch"])
    for method in config["finetune"]["methods"].values():
        method["batch_size"] = QUICK["batch"]
    config["evaluate"].update(batch_size=QUICK["batch"], max_new_tokens=QUICK["new_tokens"])
    config["cluster"]["gpus"] = QUICK["gpus"]
    return config


@dataclass(frozen=True)
class Job:
    """One planned job, as much of it as its step needs."""

    kind: str
    label: str
    size: dict  # the config's model size (layers, heads, ...)
    vocab: int
    method: str  # pretrain, fmt, lora, prompt; evaluate: the method it evaluates
    pet_size: int | None
    gpus: int
    micro: int
    batch: int  # examples (windows) per optimizer step, all ranks
    source: int = 0  # max source / target tokens (finetuning, evaluation)
    target: int = 0
    seq_len: int = 0  # pretraining windows
    new_tokens: int = 0  # evaluation's greedy steps
    planned_bytes: float = 0.0  # the plan's peak per GPU, without the CUDA context
    per_node: int = 8  # GPUs per node (cluster.gpus_per_node): a job on more runs HSDP, sharded within a node


def planned_jobs(config: dict) -> dict[str, Job]:
    """Per job kind, the planned job with the largest peak per GPU."""
    from ftscale.plan import grid, sizing

    vocab = config["data"]["tokenizer_vocab_size"]
    found: dict[str, tuple] = {}

    def offer(kind, label, plan, **fields):
        if kind in found and found[kind][0].memory.total >= plan.memory.total:
            return
        found[kind] = (
            plan,
            Job(
                kind,
                label,
                config["models"][kind.split("-")[1]],
                vocab,
                gpus=plan.gpus,
                micro=plan.micro_batch_size,
                planned_bytes=plan.memory.total - plan.memory.context,
                per_node=config["cluster"]["gpus_per_node"],
                **fields,
            ),
        )

    conditions = grid.expand_conditions(config)
    p = config["pretrain"]
    for job in grid.pretrain_jobs(config, conditions).values():
        if job.model in ("1B", "16B"):
            offer(
                f"pretrain-{job.model}",
                f"{job.rule} {job.model} on {job.tokens:,} tokens",
                sizing.pretrain_job(config, job.model, job.tokens, job.rule),
                method="pretrain",
                pet_size=None,
                batch=p["batch_size"],
                seq_len=p["seq_len"],
            )
    for c in conditions.values():
        if c.model not in ("1B", "16B"):
            continue
        task = config["tasks"][c.task]
        lengths = {"source": task["max_source_tokens"], "target": task["max_target_tokens"]}
        after = sizing.run_group_jobs(config, c)
        offer(
            f"{c.method}-{c.model}",
            c.id,
            sizing.finetune_job(config, c, after),
            method=c.method,
            pet_size=c.pet_size,
            batch=config["finetune"]["methods"][c.method]["batch_size"],
            **lengths,
        )
        if c.model == "16B":
            offer(
                "evaluate-16B",
                c.id,
                after[0],
                method=c.method,
                pet_size=c.pet_size,
                batch=config["evaluate"]["batch_size"],
                new_tokens=config["evaluate"]["max_new_tokens"],
                **lengths,
            )
    return {kind: found[kind][1] for kind in KINDS if kind in found}


class KnownValues(TorchDispatchMode):
    """Answers what a FakeTensor cannot: a boolean mask's selected count (`selected`, set per job:
    every micro-batch of worst-case examples has the same number of target positions) and scalars
    read to the host (0 / False: a decoding batch is never finished; Adafactor's RMS is only a scale)."""

    def __init__(self, selected: int = 0):
        super().__init__()
        self.selected = selected

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (
            torch.ops.aten._local_scalar_dense.default,
            torch.ops.aten.item.default,
            torch.ops.aten.is_nonzero.default,
        ):
            return False if args[0].dtype == torch.bool else (1.0 if args[0].is_floating_point() else 0)
        if func is torch.ops.aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1]):
            tensor, indices = args
            at = next(k for k, i in enumerate(indices) if i is not None and i.dtype == torch.bool)
            return tensor.new_empty((*tensor.shape[:at], self.selected, *tensor.shape[at + indices[at].dim() :]))
        return func(*args, **(kwargs or {}))


class PeakTracker(MemTracker):
    """torch's MemTracker without its per-module statistics, which refuse a root module called once per
    micro-batch; the total over every live storage, and its peak, are as MemTracker counts them."""

    def _pre_fw_hook(self, *args):
        pass

    _post_fw_hook = _pre_bw_hook = _post_bw_hook = _pre_fw_hook


def materialize(model) -> None:
    """A model built on the meta device, its tensors made (fake) on the CPU, tied weights kept tied
    (Module.to_empty swaps tensors, which FakeTensors refuse outside FSDP)."""
    made = {}
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is not None:
                made.setdefault(p, torch.nn.Parameter(torch.empty_like(p, device="cpu"), requires_grad=p.requires_grad))
                module._parameters[name] = made[p]
        for name, b in module._buffers.items():
            if b is not None:
                module._buffers[name] = made.setdefault(b, torch.empty_like(b, device="cpu"))


def worst_case_examples(job: Job, count: int) -> list[tuple[np.ndarray, int]]:
    """`count` finetuning examples at their longest, encoded as the job encodes them."""
    from ftscale.train.finetune import encode

    rng = np.random.default_rng(0)
    return [
        encode(rng.integers(4, job.vocab, job.source), rng.integers(4, job.vocab, job.target)) for _ in range(count)
    ]


@torch.inference_mode()
def greedy_decode(causal_lm, job: Job) -> None:
    """Greedy decoding of one batch of the longest prompts (`<s> source <sep>` after the soft prompt's
    slots) for all its steps, as generate() runs it: the prompt at once into the KV cache, then one
    token a step. generate() itself asks whether every row is finished, which has no answer here."""
    causal_lm.eval()
    ids = torch.ones((job.micro, job.source + 2 + (job.pet_size if job.method == "prompt" else 0)), dtype=torch.long)
    out = causal_lm(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    for _ in range(job.new_tokens):
        ids = out.logits[:, -1].argmax(-1, keepdim=True)
        out = causal_lm(input_ids=ids, past_key_values=cache, use_cache=True)


def measure(job: Job, layers: int | None = None) -> float:
    """Peak bytes on one GPU of the job's step (rank 0 of job.gpus), at `layers` decoder layers (None:
    the model's own)."""
    import torch.distributed as dist
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.testing._internal.distributed.fake_pg import FakeStore

    from ftscale.runtime.internals.transformers import decoder_layers
    from ftscale.train import batches, finetune, pretrain, training
    from ftscale.train import model as model_module
    from ftscale.train.distributed import World, device_mesh, init_adafactor_state, shard_units

    size = dict(job.size, layers=layers or job.size["layers"])
    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group("fake", rank=0, world_size=job.gpus, store=FakeStore())
    world = World(0, job.gpus, 0, min(job.gpus, job.per_node))
    positions = max(job.seq_len, job.source + job.target + 3 + (job.pet_size or 0) + job.new_tokens)
    training_job = job.kind.split("-")[0] != "evaluate"
    # a GPU's autocast, on one GPU, for greedy decoding (generate() runs outside the step's contexts);
    # not around training: autocast keeps its cache of the weights' bf16 copies until the outermost
    # context exits, which on a GPU is each forward's own (the copies then live only as saved tensors)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=job.gpus == 1 and not training_job)
    # ftscale.train.model.autocast(model) turns autocast on for a model on a GPU only: here, on one GPU,
    # the step's own autocast(model) contexts must enable it too, not switch the one above off
    gpu = contextlib.ExitStack()
    if job.gpus == 1:
        for module in (batches, pretrain):  # where the steps' autocast(model) contexts are
            gpu.enter_context(
                mock.patch.object(module, "autocast", lambda model: torch.autocast("cpu", dtype=torch.bfloat16))
            )
    known = KnownValues(selected=job.micro * (job.target + 1))
    with torch.device("meta"):
        model = model_module.new_model(size, job.vocab, positions, seed=0)
        if job.method in ("lora", "prompt"):
            model = finetune.attach_method(model, job.method, job.pet_size, seed=0)
    causal_lm = finetune.causal_lm_of(model)
    if job.method in ("fmt", "pretrain"):
        model.requires_grad_(True)
    # ftscale's own models honour packing (tests/unit/test_fast_path.py); the probe's allclose has no
    # value under FakeTensorMode
    model_module._PACKS[causal_lm] = True
    if job.gpus > 1:
        methods = (
            {"target_logits": functools.partial(finetune.target_logits, model)} if job.method != "pretrain" else {}
        )
        # outside FakeTensorMode: FSDP's default mesh reads the ranks' ids
        shard_units(model, decoder_layers(causal_lm), torch.bfloat16, methods, device_mesh(world))
    with FakeTensorMode(allow_non_fake_inputs=True):
        if job.gpus > 1:
            model.to_empty(device="cpu")
        else:
            materialize(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = training.adafactor(trainable, 1e-3, parameter_scaling=True) if training_job else None
        if optimizer:
            init_adafactor_state(optimizer)
        tracker = PeakTracker()
        tracker.track_external(model, optimizer)
        with gpu, tracker, known, autocast:
            if job.method == "pretrain":
                batch = torch.zeros((job.batch, job.seq_len), dtype=torch.long)
                pretrain.accumulate_gradients(model, batch, job.micro, world)
            elif training_job:
                finetune.accumulate_gradients(model, worst_case_examples(job, job.batch), job.micro, world)
            else:
                finetune.sequences_loss(model, worst_case_examples(job, job.micro), job.micro)
                greedy_decode(causal_lm, job)
            if optimizer:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        peak = tracker.get_tracker_snapshot("peak")
    dist.destroy_process_group()
    return float(sum(device["Total"] for device in peak.values()))


# Greedy decoding of a 16B model for all its steps is an hour of Python under FakeTensorMode here:
# these kinds are measured at fewer layers and extrapolated (measure_scaled), unless --layers 0.
SCALED = {"evaluate-16B": 2}


def measure_scaled(job: Job, layers: int) -> tuple[float, str]:
    """The peak at the model's own layer count, extrapolated linearly from `layers` and 2 x `layers`
    decoder layers (per-layer terms scale with layers, the rest does not); checked at 3 x `layers`."""
    few, more, check = (measure(job, k * layers) for k in (1, 2, 3))
    per_layer = (more - few) / layers
    predicted = few + 2 * layers * per_layer
    note = (
        f"extrapolated from {layers} and {2 * layers} layers ({few / 1e9:.3f}, {more / 1e9:.3f} GB; "
        f"{per_layer / 1e9:.3f} GB a layer); at {3 * layers} layers measured {check / 1e9:.3f} GB, "
        f"the line gives {predicted / 1e9:.3f}"
    )
    return few + per_layer * (job.size["layers"] - layers), note


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes (the test suite's run)")
    parser.add_argument("--kinds", nargs="*", default=KINDS, choices=KINDS)
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="measure every kind at N, 2N and 3N decoder layers and extrapolate (0: none; "
        "default: the kinds in SCALED, at paper shapes)",
    )
    parser.add_argument("--no-merge", action="store_true", help="print only; leave results/bench/summary.json")
    args = parser.parse_args(argv)
    from ftscale import config as config_module

    config = config_module.load(PAPER)
    config = quick_config(config) if args.quick else config
    jobs = planned_jobs(config)
    started = time.perf_counter()
    ratios, rows = {}, []
    print(f"{'job kind':14s} {'GPUs':>4s} {'micro':>5s} {'planned GB':>10s} {'measured GB':>11s} {'ratio':>6s}  job")
    for kind in args.kinds:
        job = jobs[kind]
        layers = args.layers if args.layers is not None else (0 if args.quick else SCALED.get(kind, 0))
        measured, note = measure_scaled(job, layers) if layers else (measure(job), "")
        ratios[kind] = job.planned_bytes / measured
        rows.append((kind, job, measured))
        print(
            f"{kind:14s} {job.gpus:4d} {job.micro:5d} {job.planned_bytes / 1e9:10.2f} {measured / 1e9:11.2f} "
            f"{ratios[kind]:6.3f}  {job.label}" + (f"\n{'':14s} {note}" if note else ""),
            flush=True,
        )
    seconds = time.perf_counter() - started
    print(f"measured in {seconds:.0f} s (planned GB: the plan's peak per GPU without the CUDA context)")
    figures = {"memory_planned_over_measured" + ("_quick" if args.quick else ""): ratios}
    if not args.no_merge:
        print(f"merged into {bench_summary.merge(figures)}")
    return {"ratios": ratios, "seconds": seconds, "measured": {kind: m for kind, _, m in rows}}


if __name__ == "__main__":
    main()
