"""The GPU check (`make gpu-check`): what this CPU machine cannot test, on a CUDA GPU, in under
8 minutes on one modern GPU.

1. The tiny study (tests/configs/tiny.yaml) through Snakemake on the GPU and on the CPU (the same
   machine): every run's dev and test loss agree within --loss-rtol (default 5%: the GPU trains in
   bf16 autocast, the CPU in fp32) and the mean BLEU/chrF within --score-atol points (default 5).
2. A 1B-shaped model (configs/paper.yaml `models: 1B`) timed for a few pretraining and FMT steps
   (bf16 autocast, fp32 weights and Adafactor, as the jobs run): tokens/s and MFU, printed and merged
   into results/bench/summary.json as mfu_pretrain_1b, mfu_finetune_1b (target >= 0.35), and written
   as the planner's calibration (--calibration, default results/bench/calibration.json; point
   cluster.calibration at it: ftscale.plan.timing), with the collective bandwidth given by
   --intra-node-gb-per-s / --inter-node-gb-per-s (not measured here; without them the planner refuses
   GPU counts it has no measurement for, rather than assume free communication).
3. With 2 or more GPUs, a sharded 2-rank pretraining run (FSDP2 under torchrun, ftscale.runtime.ranks) of a
   small model: its per-step losses agree with the 1-GPU run's within --loss-rtol.
Exits 1 on any mismatch. No CUDA GPU: one line saying so, exit 0 (the project never needs a GPU);
with `--device cuda` (make gpu-check DEVICE=cuda, for a cluster's GPU node) that line is an error, exit 1.
`--device cpu --dry` runs every code path on the CPU at toy size (no tiny study, no summary): a smoke
test of this script (tests/unit/test_gpu_check.py).

MFU = achieved model FLOP/s over the device's peak dense bf16 FLOP/s, model FLOPs per token
6 x parameters + 12 x layers x heads x head dim x sequence length (PaLM, appendix B: the matmuls of
forward and backward, attention included); peak from PEAK_BF16_TFLOPS by device name, else
FALLBACK_PEAK_TFLOPS (said so in the output) or --peak-tflops.
Usage: .venv/bin/python bench/gpu_check.py [--steps 5] [--device auto|cuda|cpu] [--dry] [--no-summary] [--quick]
       [--calibration FILE] [--intra-node-gb-per-s X] [--inter-node-gb-per-s X]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

# Dense bf16 peak TFLOP/s (vendor datasheets, without sparsity), matched by substring of the CUDA
# device name, first match wins (so "H100 PCIe" before "H100").
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "V100": 125.0,
}  # V100: fp16 tensor cores (it has no bf16)
FALLBACK_PEAK_TFLOPS = 312.0  # an A100: an unknown device's MFU is against this, and says so


def flops_per_token(params: int, layers: int, heads: int, head_dim: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward 2, backward 4) plus attention's score and
    value matmuls, 12 x layers x heads x head dim x sequence length."""
    return 6 * params + 12 * layers * heads * head_dim * seq_len


def mfu(tokens: int, seconds: float, flops_per_tok: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation: achieved FLOP/s over the peak."""
    return tokens * flops_per_tok / seconds / (peak_tflops * 1e12)


def peak_tflops(device_name: str, given: float | None = None) -> tuple[float, str]:
    """The peak to measure against and where it comes from."""
    if given:
        return given, "--peak-tflops"
    for name, tflops in PEAK_BF16_TFLOPS.items():
        if name in device_name:
            return tflops, f"{name} datasheet"
    return FALLBACK_PEAK_TFLOPS, f"unknown device {device_name!r}: fallback (A100)"


def timed_steps(step, steps: int, sync) -> float:
    """Median seconds of `steps` calls of step() after two warm-up calls."""
    times = []
    for i in range(steps + 2):
        sync()
        start = time.perf_counter()
        step()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_1b(
    size: dict,
    device: str,
    steps: int,
    peak: float,
    pretrain_windows: int,
    finetune_examples: int,
    seq_len: int,
    example_len: int,
) -> dict:
    """Pretraining and FMT steps of the model `size`: tokens/s and MFU of each."""
    import numpy as np
    import torch

    from ftscale.train import finetune, pretrain, training
    from ftscale.train.model import count_parameters, new_model

    vocab = 32000
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = new_model(size, vocab, max(seq_len, example_len), seed=0).to(device).train()
    params = count_parameters(model)
    optimizer = training.adafactor(model.parameters(), 1e-3, True)
    rng = np.random.default_rng(0)
    windows = torch.from_numpy(rng.integers(4, vocab, size=(pretrain_windows, seq_len))).to(device)
    examples = [
        (rng.integers(4, vocab, size=example_len).astype(np.int64), example_len // 2) for _ in range(finetune_examples)
    ]

    def step(accumulate):
        accumulate()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    figures = {}
    for name, accumulate, tokens, length in (
        ("pretrain", lambda: pretrain.accumulate_gradients(model, windows, None), windows.numel(), seq_len),
        (
            "finetune",
            lambda: finetune.accumulate_gradients(model, examples, None),
            finetune_examples * example_len,
            example_len,
        ),
    ):
        seconds = timed_steps(lambda: step(accumulate), steps, sync)  # noqa: B023 - called here, in this iteration
        per_token = flops_per_token(params, size["layers"], size["heads"], size["head_dim"], length)
        figures[name] = {
            "tokens_per_step": tokens,
            "step_s": seconds,
            "tokens_per_s": tokens / seconds,
            "mfu": mfu(tokens, seconds, per_token, peak),
        }
    model = optimizer = None  # frees the device memory (the closures above hold these names)
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"params": params} | figures


def calibration(name: str, peak: float, timing: dict, gpus: int, bandwidth: dict) -> dict:
    """The planner's calibration (cluster.calibration; ftscale.plan.timing reads it): MFU as the planner
    counts FLOPs (6 x parameters per trained token, attention left out), the slower of the pretraining
    and FMT steps, of the timed model on one GPU; the collective bandwidth given on the command line."""
    tokens_per_s = min(timing[stage]["tokens_per_s"] for stage in ("pretrain", "finetune"))
    entry = {"parameters": timing["params"], "gpus": gpus, "mfu": 6 * timing["params"] * tokens_per_s / (peak * 1e12)}
    links = {link: value for link, value in bandwidth.items() if value}
    return {"device": name, "peak_tflops": peak, "mfu": [entry]} | ({"bandwidth_gb_per_s": links} if links else {})


def tiny_study_metrics(workdir: Path, device: str, cores: int) -> list[dict]:
    """The tiny study's metrics.csv rows, run through Snakemake on `device`."""
    env = {**os.environ, "FTSCALE_WORKER": "0"} | ({"FTSCALE_DEVICE": "cpu"} if device == "cpu" else {})
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--configfile",
        str(ROOT / "tests" / "configs" / "tiny.yaml"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"gpu-check: the tiny study on {device} failed:\n{result.stderr[-3000:]}")
    with open(workdir / "results" / "tiny" / "metrics.csv") as stream:
        return list(csv.DictReader(stream))


def compare_metrics(gpu_rows: list[dict], cpu_rows: list[dict], loss_rtol: float, score_atol: float) -> list[str]:
    """Mismatches between the GPU and CPU runs (empty: they agree)."""
    key = ("task", "model", "pretrain_tokens", "method", "pet_size", "finetune_examples", "seed")
    cpu = {tuple(r[k] for k in key): r for r in cpu_rows}
    problems = [] if len(gpu_rows) == len(cpu_rows) else [f"{len(gpu_rows)} GPU runs, {len(cpu_rows)} CPU runs"]
    for row in gpu_rows:
        other = cpu.get(tuple(row[k] for k in key))
        if other is None:
            problems.append(f"run {tuple(row[k] for k in key)} only on the GPU")
            continue
        for column in ("dev_loss", "test_loss"):
            a, b = float(row[column]), float(other[column])
            if abs(a - b) > loss_rtol * abs(b):
                problems.append(f"{column} of {tuple(row[k] for k in key)}: GPU {a:.4f}, CPU {b:.4f}")
    for column in ("bleu", "chrf"):
        gpu_scores = [float(r[column]) for r in gpu_rows if r.get(column)]
        cpu_scores = [float(r[column]) for r in cpu_rows if r.get(column)]
        if gpu_scores and abs(statistics.mean(gpu_scores) - statistics.mean(cpu_scores)) > score_atol:
            problems.append(
                f"mean {column}: GPU {statistics.mean(gpu_scores):.2f}, CPU {statistics.mean(cpu_scores):.2f}"
            )
    return problems


def sharded_check(device: str, loss_rtol: float, workdir: Path) -> list[str]:
    """A small model pretrained on 1 device and as 2 ranks (FSDP2): per-step losses agree."""
    from ftscale.data import synthetic, tokens
    from ftscale.runtime import ranks
    from ftscale.train import pretrain

    lines = synthetic.pretrain_text("en", 300, 0)
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokens.write_pretrain_stream(tokenizer, lines, workdir / "stream")
    stream = workdir / "stream" / "tokens.npy"
    args = dict(
        size={"layers": 2, "heads": 4, "head_dim": 16, "ffn_dim": 128, "model_dim": 64},
        vocab_size=300,
        train_tokens=stream,
        val_tokens=stream,
        tokens=4096,
        seq_len=32,
        batch_size=8,
        lr_max=1e-2,
        lr_min=1e-3,
        warmup_steps=2,
        parameter_scaling=False,
        seed=0,
        log_every=1,
        log_name="gpu-check",
        val_windows=64,
        checkpoint_every=10**9,
    )
    one = pretrain.pretrain(**args, out_dir=workdir / "one")
    env = {"FTSCALE_WORKER": "0"} | ({"FTSCALE_DEVICE": "cpu"} if device == "cpu" else {})
    os.environ.update(env)
    ranks.run("ftscale.train.pretrain:pretrain", ranks.Layout(per_node=2), **args, out_dir=workdir / "two")
    two = json.loads((workdir / "two" / "pretrain.json").read_text())
    return [
        f"sharded step {a['step']}: 2 ranks {b['train_loss']:.5f}, 1 device {a['train_loss']:.5f}"
        for a, b in zip(one["history"], two["history"])
        if abs(a["train_loss"] - b["train_loss"]) > loss_rtol * a["train_loss"]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="auto: CUDA where there is one, else say so and exit 0; cuda: no CUDA is an error (exit 1)",
    )
    parser.add_argument("--dry", action="store_true", help="toy sizes, no tiny study: a smoke test of this script")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--loss-rtol", type=float, default=0.05)
    parser.add_argument("--score-atol", type=float, default=5.0)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--no-summary", action="store_true", help="do not merge into results/bench/summary.json")
    parser.add_argument("--quick", action="store_true", help="--device cpu --dry --no-summary (the tests' run)")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=ROOT / "results" / "bench" / "calibration.json",
        help="where the planner's calibration goes (cluster.calibration); written unless --dry, or if given",
    )
    parser.add_argument("--intra-node-gb-per-s", type=float, help="collective bandwidth within a node, if known")
    parser.add_argument("--inter-node-gb-per-s", type=float, help="collective bandwidth across nodes, if known")
    args = parser.parse_args()
    if args.quick:
        args.device, args.dry, args.no_summary = "cpu", True, True
    import torch
    import yaml

    if args.device != "cpu" and not torch.cuda.is_available():
        if args.device == "cuda":  # asked for: a CPU wheel or a driver older than the wheel's CUDA is an error
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
            print(
                f"gpu-check: --device cuda but torch {torch.__version__} ({build}) cannot use a GPU here "
                f"(torch.cuda.is_available() is False)",
                file=sys.stderr,
            )
            return 1
        print("gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False); nothing to check")
        return 0
    args.device = args.device if args.device == "cpu" else "cuda"
    if args.device == "cpu":
        os.environ["FTSCALE_DEVICE"] = "cpu"
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    peak, peak_source = peak_tflops(name, args.peak_tflops)
    print(f"gpu-check on {name}: MFU against {peak:g} TFLOP/s bf16 ({peak_source})", flush=True)
    problems = []

    size = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["models"]["1B"]
    shape = dict(pretrain_windows=8, finetune_examples=16, seq_len=1024, example_len=256)
    if args.dry:  # the 1B shape scaled down to run in seconds on a CPU
        size = {"layers": 2, "heads": 2, "head_dim": 16, "ffn_dim": 64, "model_dim": 32}
        shape = dict(pretrain_windows=2, finetune_examples=2, seq_len=32, example_len=16)
    timing = time_1b(size, args.device, 1 if args.dry else args.steps, peak, **shape)
    for stage in ("pretrain", "finetune"):
        t = timing[stage]
        print(
            f"  {stage:8s} {timing['params'] / 1e9:.2f}B params: {t['tokens_per_s']:,.0f} tokens/s, "
            f"{t['step_s'] * 1e3:.0f} ms/step, MFU {t['mfu']:.3f}",
            flush=True,
        )

    if not args.dry or "--calibration" in sys.argv[1:]:
        links = {"intra_node": args.intra_node_gb_per_s, "inter_node": args.inter_node_gb_per_s}
        args.calibration.parent.mkdir(parents=True, exist_ok=True)
        args.calibration.write_text(json.dumps(calibration(name, peak, timing, 1, links), indent=1))
        print(f"  calibration for the planner: {args.calibration} (set cluster.calibration to it)", flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        scratch = Path(scratch)
        if not args.dry:
            cores = os.cpu_count() or 1
            gpu_rows = tiny_study_metrics(scratch / "gpu", args.device, cores)
            cpu_rows = tiny_study_metrics(scratch / "cpu", "cpu", cores)
            mismatches = compare_metrics(gpu_rows, cpu_rows, args.loss_rtol, args.score_atol)
            print(
                f"  tiny study: {len(gpu_rows)} runs on {args.device} vs CPU: "
                f"{'agree' if not mismatches else f'{len(mismatches)} mismatches'}",
                flush=True,
            )
            problems += mismatches
        gpus = torch.cuda.device_count() if args.device == "cuda" else 2  # the CPU: 2 gloo ranks
        if gpus >= 2:
            mismatches = sharded_check(args.device, args.loss_rtol, scratch)
            print(
                f"  sharded 2-rank pretraining: {'agrees' if not mismatches else 'MISMATCH'} with 1 device", flush=True
            )
            problems += mismatches
        else:
            print("  sharded check: one GPU, skipped (needs 2)")

    if not args.dry and not args.no_summary:
        import summary as bench_summary  # bench/summary.py

        figures = {
            "mfu_pretrain_1b": timing["pretrain"]["mfu"],
            "mfu_finetune_1b": timing["finetune"]["mfu"],
            "gpu_check": {
                "device": name,
                "peak_tflops": peak,
                "peak_source": peak_source,
                "timing": timing,
                "mismatches": problems,
            },
        }
        print(f"merged into {bench_summary.merge(figures)}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
