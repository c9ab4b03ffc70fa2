"""Training and evaluation speed of ftscale next to the usual Hugging Face tools (issue 6).

Measured side by side in one run, same model, data, batch size, steps and threads (1 per
measurement), on data built here from the synthetic generator with the toy's length cuts:
- finetune_speedup_vs_hf_trainer: target tokens trained per second by ftscale's finetuning loop
  (finetune.finetune: packed batches, LM head on target positions only) over transformers.Trainer's (DataCollatorForSeq2Seq padding, labels -100 on the
  source, the same Adafactor, cosine schedule and no clipping), per task and method; with both
  final dev losses (token-level mean), which should agree within noise (batches differ); and
  ftscale with its opt-in length bucketing, faster still but with other batches. With --clock cpu,
  per second of this process's CPU time instead of the wall clock (finetune_clock says which): the
  loops run one after the other, and on a machine with more runnable processes than cores the
  wall clock also counts the waits for one (0.92-2.91x at load 15-19); CPU time still counts
  sharing a core (caches, its hyperthread): two runs 20 minutes apart gave 1.58-1.97x, 1.46-2.01x.
- decode_speedup_vs_hf_generate: greedy decoding throughput of decode.greedy_decode (batched, the
  evaluation's batch size) over plain `model.generate` one example at a time with default settings;
  decode_speedup_vs_hf_generate_batched: over `model.generate` on left-padded batches of the same
  batch size (attention mask, pad id; the examples in their order); the share of identical outputs of each.
- job_overhead_s: a finetune job's fixed cost, from process start to its first training step:
  a fresh interpreter (cold) and a job handed to the warm fork-server (worker.run).
- pretrain_tokens_per_s, peak_rss_mb: per model size of the toy grid (config.yaml `models:`), one
  process each.
- with CUDA (never needed): tokens/s and model FLOPs utilisation for pretraining and finetuning.

Prints a table and merges its figures into results/bench/summary.json (bench/run.py writes the rest).
Usage: .venv/bin/python bench/bench_speed.py [--steps 32] [--decode-examples 64] [--clock cpu] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import summary as bench_summary  # bench/summary.py
import yaml

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no loading progress bars in the table
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("PYTHONWARNINGS", "ignore")  # nor deprecation notes (here and in jobs)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
METHODS = {"fmt": None, "prompt": "default_size", "lora": "default_size"}
TASKS = {"translation": "translation_ende", "summarization": "summarization"}  # config.yaml task names


# ------------------------------------------------------------------------------------------ data
def prepare(root: Path, config: dict, pretrain_lines: int = 1500) -> dict:
    """Tokenizer, pretraining stream and the two tasks' train/dev/test splits, as the workflow makes
    them (synthetic source, the toy's sizes and length cuts)."""
    from ftscale.data import sources, tokens

    source = sources.get_source("synthetic", config["seed"])
    lines = source.pretrain_lines("ende", ["en", "de"], "train", 0, pretrain_lines)
    tokenizer = tokens.train_tokenizer(lines, config["data"]["tokenizer_vocab_size"])
    tokenizer.save(str(root / "tokenizer.json"))
    tokens.write_pretrain_stream(tokenizer, lines, root / "stream")
    tasks = {}
    for kind, name in TASKS.items():
        task = config["tasks"][name]
        for split, records in sources.task_splits(source, name, task).items():
            tokens.write_task_split(tokenizer, records, root / kind / split)
        tasks[kind] = {
            "max_source": task["max_source_tokens"],
            "max_target": task["max_target_tokens"],
            "examples": task["train_examples"],
        }
    return tasks


# ------------------------------------------------------------------------------------ pretraining
PRETRAIN_JOB = """
import json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
from ftscale.config import schema_default
from ftscale.train import pretrain
a = json.loads(sys.argv[1])
s = pretrain.pretrain(size=a["size"], vocab_size=a["vocab"], train_tokens=Path(a["stream"]), val_tokens=Path(a["stream"]),
                      tokens=a["tokens"], seq_len=a["seq_len"], batch_size=a["batch_size"], lr_max=a["lr"], lr_min=a["lr"] / 10,
                      warmup_steps=2, parameter_scaling=False, seed=0, out_dir=Path(a["out"]), log_every=10**9, log_name="bench",
                      val_windows=schema_default("pretrain", "val_windows"), checkpoint_every=10**9)
print("RESULT", json.dumps({"params": s["params"], "tokens": s["pretrain_tokens"], "loop_seconds": s["loop_seconds"],
                            "val_loss": s["val_loss"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def python(code: str, *args: str, env: dict | None = None) -> dict:
    """Run code in a fresh interpreter; its `RESULT {json}` line."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.split("RESULT ", 1)[1].splitlines()[0])


def bench_pretrain(root: Path, config: dict, steps: int, base_steps: int) -> dict:
    """One pretraining job per model size; the base model (pretrain.base_model) trains longer, as the
    finetuning base of the other figures."""
    p = config["pretrain"]
    figures = {}
    for name, size in config["models"].items():
        n = base_steps if name == config["pretrain"]["base_model"] else steps
        args = {
            "size": size,
            "vocab": config["data"]["tokenizer_vocab_size"],
            "stream": str(root / "stream" / "tokens.npy"),
            "tokens": n * p["batch_size"] * p["seq_len"],
            "seq_len": p["seq_len"],
            "batch_size": p["batch_size"],
            "lr": p["lr_max"],
            "out": str(root / "models" / name),
        }
        r = python(PRETRAIN_JOB, json.dumps(args))
        figures[name] = {
            "params": r["params"],
            "tokens_per_s": r["tokens"] / r["loop_seconds"],
            "peak_rss_mb": r["peak_rss_mb"],
            "val_loss": r["val_loss"],
        }
    return figures


# ------------------------------------------------------------------------------------- finetuning
def hf_trainer_run(
    root: Path, base: Path, task: dict, method: str, pet_size, lr: float, batch_size: int, steps: int, seed: int
) -> dict:
    """transformers.Trainer as one would write it: padded Seq2Seq collator, labels -100 on the source."""
    import torch
    from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerFast, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from ftscale.data.tokens import TaskSplit
    from ftscale.train import finetune, training
    from ftscale.train.model import load_model

    hf_logging.set_verbosity_error()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(root / "tokenizer.json"),
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        sep_token="<sep>",
    )

    def dataset(split, indices):
        rows = []
        for ids, prompt in finetune.encode_split(split, indices, task["max_source"], task["max_target"]):
            ids = ids.tolist()
            rows.append(
                {
                    "input_ids": ids,
                    "attention_mask": [1] * len(ids),
                    "labels": [finetune.IGNORE] * prompt + ids[prompt:],
                }
            )
        return rows

    train, dev = TaskSplit(root / task["kind"] / "train"), TaskSplit(root / task["kind"] / "dev")
    train_rows = dataset(train, finetune.subset(train, task["examples"], seed))
    dev_rows = dataset(dev, range(len(dev)))
    training.seed_everything(seed)
    model = finetune.attach_method(load_model(base), method, pet_size, seed)
    if method == "fmt":
        model.requires_grad_(True)
    optimizer = training.adafactor([p for p in model.parameters() if p.requires_grad], lr, False)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: training.cosine_lr(s, steps, 1.0, 0.1))
    args = TrainingArguments(
        output_dir=str(root / "hf-trainer"),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        max_steps=steps,
        max_grad_norm=0.0,
        logging_steps=10**6,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=finetune.IGNORE, padding=True)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=dev_rows,
        data_collator=collator,
        optimizers=(optimizer, schedule),
    )
    counted, inner = [], trainer.data_collator  # target tokens of the batches trained on

    def counting_collator(rows):
        counted.append(sum(len(r["labels"]) - r["labels"].count(finetune.IGNORE) for r in rows))
        return inner(rows)

    trainer.data_collator = counting_collator
    started = time.perf_counter()
    trainer.train()
    dev_loss = trainer.evaluate()["eval_loss"]  # one batch of all 64 dev examples: token-level mean
    seconds = time.perf_counter() - started
    tokens = sum(counted[:steps])
    return {
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "dev_loss": float(dev_loss),
        "target_tokens": tokens,  # and the same dev loss by ftscale's own metric, as a check
        "eval_check": finetune.sequences_loss(
            model, finetune.encode_split(dev, range(len(dev)), task["max_source"], task["max_target"]), 64
        ),
    }


def ftscale_run(
    root: Path,
    base: Path,
    task: dict,
    method: str,
    pet_size,
    lr: float,
    batch_size: int,
    steps: int,
    seed: int,
    bucket_batches: int | None = None,
) -> dict:
    from ftscale.config import schema_default
    from ftscale.train import finetune

    loop = {key: schema_default("finetune", key) for key in ("lr_min_divisor", "warmup_steps", "dev_batch_size")}
    bucketing = {} if bucket_batches is None else {"bucket_batches": bucket_batches}
    out = root / "ftscale" / task["kind"] / f"{method}{bucket_batches or ''}"
    s = finetune.finetune(
        base_dir=base,
        method=method,
        pet_size=pet_size,
        learning_rate=lr,
        batch_size=batch_size,
        parameter_scaling=False,
        max_steps=steps,
        max_epochs=10**6,
        eval_every=steps,
        train_dir=root / task["kind"] / "train",
        dev_dir=root / task["kind"] / "dev",
        finetune_examples=task["examples"],
        max_source=task["max_source"],
        max_target=task["max_target"],
        seed=seed,
        out_dir=out,
        log_name="bench",
        threads=1,
        **loop,
        **bucketing,
    )
    return {
        "tokens_per_s": s["target_tokens"] / s["train_seconds"],
        "seconds": s["train_seconds"],
        "dev_loss": s["dev_loss"],
        "target_tokens": s["target_tokens"],
        "checkpoint": str(out / "checkpoint"),
    }


@contextlib.contextmanager
def clock(kind: str):
    """`cpu`: for the duration, time.perf_counter reads this process's CPU time (time.process_time),
    so that both loops' own timers (finetune's train_seconds, hf_trainer_run's window) count CPU
    seconds over the same windows as the wall clock would; one thread, so CPU time is the time
    computed. `wall`: nothing changes."""
    wall = time.perf_counter
    time.perf_counter = time.process_time if kind == "cpu" else wall
    try:
        yield
    finally:
        time.perf_counter = wall


def bench_finetune(
    root: Path, config: dict, tasks: dict, base: Path, steps: int, methods, clock_kind: str = "wall"
) -> dict:
    import io

    ft = config["finetune"]
    figures = {}
    for kind, task in tasks.items():
        task = {**task, "kind": kind}
        for method in methods:
            m = ft["methods"][method]
            pet_size = m.get("default_size") if METHODS[method] else None
            args = (root, base, task, method, pet_size, m["learning_rate"], m["batch_size"], steps, 0)
            with contextlib.redirect_stdout(io.StringIO()), clock(clock_kind):
                ours = ftscale_run(*args)
                hf = hf_trainer_run(*args)
                bucketed = ftscale_run(*args, bucket_batches=16)  # the opt-in length bucketing: speed vs. dev loss
            figures[f"{kind}/{method}"] = {
                "speedup": ours["tokens_per_s"] / hf["tokens_per_s"],
                "ftscale_tokens_per_s": ours["tokens_per_s"],
                "hf_trainer_tokens_per_s": hf["tokens_per_s"],
                "ftscale_dev_loss": ours["dev_loss"],
                "hf_trainer_dev_loss": hf["dev_loss"],
                "hf_trainer_dev_loss_ftscale_metric": hf["eval_check"],
                "ftscale_bucketed_tokens_per_s": bucketed["tokens_per_s"],
                "ftscale_bucketed_dev_loss": bucketed["dev_loss"],
                "ftscale_seconds": ours["seconds"],
                "hf_trainer_seconds": hf["seconds"],
                "checkpoint": ours["checkpoint"],
                "pet_size": pet_size,
            }
    return figures


# ---------------------------------------------------------------------------------------- decoding
def bench_decode(root: Path, config: dict, tasks: dict, base: Path, finetuned: dict, examples: int) -> dict:
    import numpy as np
    import torch

    from ftscale.data.tokens import BOS_ID, EOS_ID, SEP_ID, TaskSplit
    from ftscale.evaluate import decode
    from ftscale.train.finetune import load_finetuned

    ev = config["evaluate"]
    figures = {}
    for key, run in finetuned.items():
        kind, method = key.split("/")
        task = tasks[kind]
        test = TaskSplit(root / kind / "test")
        test = _first(test, min(examples, len(test)))
        model = load_finetuned(base, Path(run["checkpoint"]), method)
        started = time.perf_counter()
        ours = decode.greedy_decode(model, test, task["max_source"], ev["max_new_tokens"], ev["batch_size"])
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        plain = []
        with torch.no_grad():
            for i in range(len(test)):
                ids = torch.tensor([[BOS_ID, *test.example(i, task["max_source"], 0)[0].tolist(), SEP_ID]])
                new = model.generate(input_ids=ids, max_new_tokens=ev["max_new_tokens"])[0, ids.shape[1] :].tolist()
                plain.append(new[: new.index(EOS_ID)] if EOS_ID in new else new)
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        batched = generate_batched(model, test, task["max_source"], ev["max_new_tokens"], ev["batch_size"])
        batched_s = time.perf_counter() - started
        tokens = sum(len(o) for o in ours)
        figures[key] = {
            "speedup": plain_s / ours_s,
            "speedup_vs_batched_generate": batched_s / ours_s,
            "batch_size": ev["batch_size"],
            "ftscale_tokens_per_s": tokens / ours_s,
            "hf_generate_tokens_per_s": sum(len(o) for o in plain) / plain_s,
            "hf_generate_batched_tokens_per_s": sum(len(o) for o in batched) / batched_s,
            "match": float(np.mean([a == b for a, b in zip(ours, plain)])),
            "match_batched": float(np.mean([a == b for a, b in zip(ours, batched)])),
            "examples": len(test),
            "mean_new_tokens": tokens / len(test),
        }
    return figures


def generate_batched(model, split, max_source: int, max_new_tokens: int, batch_size: int) -> list[list[int]]:
    """`model.generate` as one batches it: `<s> source <sep>` prompts in their order, left-padded
    with an attention mask, greedy (the default); each output cut before its first </s>."""
    import torch

    from ftscale.data.tokens import BOS_ID, EOS_ID, PAD_ID, SEP_ID

    prompts = [[BOS_ID, *split.example(i, max_source, 0)[0].tolist(), SEP_ID] for i in range(len(split))]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            rows = prompts[start : start + batch_size]
            width = max(map(len, rows))
            ids = torch.tensor([[PAD_ID] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            new = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=PAD_ID
            )[:, width:].tolist()
            outputs += [row[: row.index(EOS_ID)] if EOS_ID in row else row for row in new]
    return outputs


def _first(split, n: int):
    """The first n examples of a split (same arrays, shorter offsets)."""
    import copy

    view = copy.copy(split)
    view.source_offsets, view.target_offsets = split.source_offsets[: n + 1], split.target_offsets[: n + 1]
    view.lang = split.lang[:n]
    return view


# ----------------------------------------------------------------------------------- job overhead
JOB = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
from ftscale.runtime import worker
a = json.loads(sys.argv[1])
worker.run("ftscale.train.finetune:finetune", log=a.pop("log"), **{{k: Path(v) if k.endswith("_dir") else v for k, v in a.items()}})
"""


def bench_overhead(root: Path, tasks: dict, base: Path, repeats: int) -> dict:
    """Process start to first training step of a 1-step finetune job, cold and through the warm worker."""
    task = tasks["translation"]
    # a worker socket of its own: the worker keeps it in $XDG_RUNTIME_DIR/ftscale, which must be its own
    # 0700 directory (runtime/worker.py), apart from the finetuning runs' outputs under <root>/ftscale
    runtime = root / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"TMPDIR": str(root), "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": ""}

    def job(i: int, worker_on: bool) -> float:
        out = root / "jobs" / f"{i}-{worker_on}"
        args = {
            "base_dir": str(base),
            "method": "lora",
            "pet_size": 4,
            "learning_rate": 1e-2,
            "batch_size": 16,
            "parameter_scaling": False,
            "max_steps": 1,
            "max_epochs": 1,
            "eval_every": 1,
            "train_dir": str(root / "translation" / "train"),
            "dev_dir": str(root / "translation" / "dev"),
            "finetune_examples": task["examples"],
            "max_source": task["max_source"],
            "max_target": task["max_target"],
            "seed": 0,
            "out_dir": str(out),
            "log": str(root / "jobs.log"),
            "threads": 1,
            "lr_min_divisor": 10,
            "warmup_steps": 0,
            "dev_batch_size": 64,
        }
        started = time.time()
        subprocess.run(
            [sys.executable, "-c", JOB.format(src=str(ROOT / "src")), json.dumps(args)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, **env, "FTSCALE_WORKER": "1" if worker_on else "0"},
        )
        return json.loads((out / "train.json").read_text())["first_step_at"] - started

    cold = [job(i, False) for i in range(repeats)]
    server_env = {**os.environ, **env}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r}); "
            "from ftscale.runtime import worker; print(worker.socket_path())",
        ],
        capture_output=True,
        text=True,
        env=server_env,
        check=True,
    )
    socket = Path(probe.stdout.strip())
    server = subprocess.Popen(
        [sys.executable, "-m", "ftscale.runtime.worker", str(socket)],
        env={**server_env, "PYTHONPATH": str(ROOT / "src")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        warm = [job(i, True) for i in range(repeats)]
    finally:
        server.terminate()
        server.wait()
    return {
        "cold": statistics.median(cold),
        "warm_worker": statistics.median(warm),
        "cold_runs": cold,
        "warm_runs": warm,
    }


# ------------------------------------------------------------------------------------------- GPU
def bench_cuda(config: dict, steps: int = 20) -> dict:
    """tokens/s and MFU (6 N tokens/s over the device's dense bf16 peak) of pretraining and of FMT
    finetuning steps on the largest toy model, bf16 autocast. Only where CUDA is present."""
    import torch

    from ftscale.train import finetune
    from ftscale.train.model import count_parameters, new_model

    peaks = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in peaks.items() if k in name), None)
    p, size = config["pretrain"], list(config["models"].values())[-1]
    model = new_model(size, config["data"]["tokenizer_vocab_size"], 512, 0).cuda()
    n = count_parameters(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    batch = torch.randint(4, config["data"]["tokenizer_vocab_size"], (p["batch_size"] * 8, p["seq_len"]), device="cuda")
    fine = {"input_ids": batch, "attention_mask": torch.ones_like(batch), "labels": batch.clone()}
    fine["labels"][:, : p["seq_len"] // 2] = finetune.IGNORE
    out = {"device": name, "params": n}
    for kind, loss_of in (
        ("pretrain", lambda: model(input_ids=batch, labels=batch).loss),
        ("finetune", lambda: (lambda nll, c: nll / c)(*finetune.target_nll(model, fine))),
    ):
        for i in range(steps + 3):
            if i == 3:
                torch.cuda.synchronize()
                started = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = loss_of()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        tokens_per_s = steps * batch.numel() / (time.perf_counter() - started)
        out[kind] = {"tokens_per_s": tokens_per_s, "mfu": 6 * n * tokens_per_s / peak if peak else None}
    return out


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--steps", type=int, help="finetuning steps per run, both loops (default: finetune.max_steps)")
    parser.add_argument("--pretrain-steps", type=int, default=24, help="pretraining steps per model size")
    parser.add_argument("--base-steps", type=int, default=100, help="pretraining steps of the finetuning base model")
    parser.add_argument("--decode-examples", type=int, default=64, help="test examples decoded per run")
    parser.add_argument("--repeats", type=int, default=2, help="jobs per overhead figure (median)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="finetuning's tokens per second of wall-clock time, or of this process's CPU time (no waits for a core counted)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="translation only, FMT and LoRA, a few steps (the tests' run: seconds)"
    )
    args = parser.parse_args()

    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore")  # peft/transformers deprecation notes, not figures
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    config = yaml.safe_load(args.config.read_text())
    args.steps = args.steps or config["finetune"]["max_steps"]
    if args.quick:
        args.steps, args.pretrain_steps, args.base_steps, args.decode_examples, args.repeats = 4, 2, 4, 8, 1
    methods = ["fmt", "lora"] if args.quick else list(METHODS)
    figures: dict = {
        "speed_machine": f"{os.cpu_count()}-core CPU, 1 thread per measurement, torch {torch.__version__}",
        "speed_steps": args.steps,
        "finetune_clock": args.clock,
    }
    with tempfile.TemporaryDirectory(prefix="ftscale-speed-") as scratch:
        root = Path(scratch)
        if args.quick:  # the base model alone, a smaller corpus
            config["models"] = {k: v for k, v in config["models"].items() if k == config["pretrain"]["base_model"]}
        tasks = prepare(root, config, 300 if args.quick else 6000)
        if args.quick:
            tasks.pop("summarization")
        pre = bench_pretrain(root, config, args.pretrain_steps, args.base_steps)
        base = root / "models" / config["pretrain"]["base_model"]
        fine = bench_finetune(root, config, tasks, base, args.steps, methods, args.clock)
        decode = bench_decode(root, config, tasks, base, fine, args.decode_examples)
        overhead = bench_overhead(root, tasks, base, args.repeats)
        for run in fine.values():
            run.pop("checkpoint")
        figures |= {
            "finetune_speedup_vs_hf_trainer": {k: round(v["speedup"], 3) for k, v in fine.items()},
            "finetune_speed": fine,
            "decode_speedup_vs_hf_generate": {k: round(v["speedup"], 3) for k, v in decode.items()},
            "decode_speedup_vs_hf_generate_batched": {
                k: round(v["speedup_vs_batched_generate"], 3) for k, v in decode.items()
            },
            "decode_speed": decode,
            "job_overhead_s": overhead,
            "pretrain_tokens_per_s": {k: round(v["tokens_per_s"]) for k, v in pre.items()},
            "peak_rss_mb": {k: round(v["peak_rss_mb"]) for k, v in pre.items()},
            "pretrain_speed": pre,
        }
        if torch.cuda.is_available():
            try:
                figures["cuda"] = bench_cuda(config)
            except Exception as exc:  # noqa: BLE001 - the CPU figures stand on their own
                figures["cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
    print_table(figures)
    print(f"merged into {bench_summary.merge(figures)}")


def print_table(f: dict) -> None:
    per = "CPU-second" if f.get("finetune_clock") == "cpu" else "wall-clock second"
    print(f"\nftscale speed ({f['speed_machine']}; {f['speed_steps']} finetuning steps per run, tokens per {per})")
    print(
        f"\n{'finetuning':22} {'ftscale tok/s':>13} {'Trainer tok/s':>13} {'speedup':>8}   "
        f"{'dev loss: ftscale':>17} {'Trainer':>8}   {'bucketed tok/s':>14} {'dev loss':>8}"
    )
    for key, r in f["finetune_speed"].items():
        print(
            f"{key:22} {r['ftscale_tokens_per_s']:13.0f} {r['hf_trainer_tokens_per_s']:13.0f} {r['speedup']:7.2f}x   "
            f"{r['ftscale_dev_loss']:17.4f} {r['hf_trainer_dev_loss']:8.4f}   "
            f"{r['ftscale_bucketed_tokens_per_s']:14.0f} {r['ftscale_bucketed_dev_loss']:8.4f}"
        )
    print(
        "target: >= 2x, dev losses equal within noise (batches differ: each loop draws its own)\n"
        "bucketed: ftscale with the opt-in length bucketing (finetune(bucket_batches=16)); it changes batches"
    )
    print(
        f"\n{'greedy decoding':24} {'ftscale tok/s':>14} | {'generate 1-by-1':>15} {'speedup':>8} {'same':>5} | "
        f"{'generate batched':>16} {'speedup':>8} {'same':>5}"
    )
    for key, r in f["decode_speed"].items():
        print(
            f"{key:24} {r['ftscale_tokens_per_s']:14.0f} | {r['hf_generate_tokens_per_s']:15.0f} {r['speedup']:7.2f}x "
            f"{r['match']:5.0%} | {r['hf_generate_batched_tokens_per_s']:16.0f} {r['speedup_vs_batched_generate']:7.2f}x "
            f"{r['match_batched']:5.0%}"
        )
    batch = next(iter(f["decode_speed"].values()), {}).get("batch_size")
    print(
        f"ftscale: decode.greedy_decode, batches of {batch} sorted by length; generate 1-by-1: model.generate one "
        f"example at a time; generate batched: model.generate on left-padded batches of {batch} in order.\n"
        "target: >= 1x over each, same outputs"
    )
    o = f["job_overhead_s"]
    print(
        f"\njob overhead (process start to first step): cold {o['cold']:.2f} s, warm worker {o['warm_worker']:.2f} s"
        "   target: <= 4 s"
    )
    print(f"\n{'pretraining':8} {'params':>9} {'tokens/s':>10} {'peak RSS MB':>12}")
    for key, r in f["pretrain_speed"].items():
        print(f"{key:8} {r['params']:9,} {r['tokens_per_s']:10.0f} {r['peak_rss_mb']:12.0f}")
    if "cuda" in f:
        c = f["cuda"]
        if "error" in c:
            print(f"cuda: {c['error']}")
            return
        for kind in ("pretrain", "finetune"):
            mfu = f"{c[kind]['mfu']:.1%}" if c[kind]["mfu"] is not None else "n/a"
            print(f"cuda {c['device']} {kind}: {c[kind]['tokens_per_s']:.0f} tokens/s, MFU {mfu}")


if __name__ == "__main__":
    main()
