"""What pretraining and finetuning share: the schedule, the optimiser, resumable state, logging.

Resumable state lives outside Snakemake's declared outputs (which it deletes before a rerun), is
written atomically, and is removed once the job's outputs are complete.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from ftscale import faults


def cosine_lr(step: int, total_steps: int, lr_max: float, lr_min: float, warmup_steps: int = 0) -> float:
    """Linear warm-up, then cosine decay from lr_max to lr_min at total_steps."""
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def adafactor(parameters, lr: float, parameter_scaling: bool):
    """Adafactor with an explicit learning rate (no relative step). With parameter_scaling, updates
    are scaled by each parameter's RMS, as T5X (the paper) does over its 200K steps; the toy's few
    hundred steps need absolute step sizes (parameter_scaling off)."""
    from transformers import Adafactor

    return Adafactor(parameters, lr=lr, scale_parameter=parameter_scaling, relative_step=False, warmup_init=False)


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


class Log:
    """Progress lines to the job's log (stdout is redirected there by the rule)."""

    def __init__(self, prefix: str):
        self.prefix, self.start = prefix, time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{self.prefix} {time.perf_counter() - self.start:7.1f}s] {message}", flush=True)


def save_resume_state(path: Path, state: dict) -> None:
    """Atomic: a kill mid-write leaves the previous state intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**state, "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
             "python_rng": random.getstate(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    faults.point(f"resume:{state.get('step')}")   # fault-injection tests: killed with a state saved


def load_resume_state(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    state = torch.load(path, weights_only=False, map_location="cpu")   # load_state_dict moves it to the model
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from any parts (not Python's salted hash)."""
    import hashlib

    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
