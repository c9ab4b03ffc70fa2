"""What pretraining and finetuning share: the training loop (run_loop), the schedule, the
optimiser, micro-batches, resumable state and time-limited segments, logging.

Resumable state lives outside Snakemake's declared outputs (which it deletes before a rerun), is
written atomically, and is removed once the job's outputs are complete.

A job given `segment_seconds` trains for about that long, saves its resume state and raises
SegmentEnd (ftscale.runtime.jobs); the job's script exits with jobs.SEGMENT_EXIT_CODE and one log line, and the next
submission of the same job (Snakemake `--retries`) continues from the saved state, to the same
result as one uninterrupted run (bitwise on CPU: tests/unit/test_segments.py).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ftscale.runtime import faults, jobs, tracking
from ftscale.runtime.jobs import SegmentEnd  # raised here, caught by the jobs' scripts
from ftscale.train import distributed
from ftscale.train.distributed import World


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


def micro_batches(batch, micro_batch_size: int | None) -> list:
    """The batch (a list of examples or a tensor of windows) cut into consecutive micro-batches of at
    most micro_batch_size; None: the whole batch in one pass."""
    if micro_batch_size is None:
        return [batch]
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be a positive integer, got {micro_batch_size!r}")
    return [batch[start : start + micro_batch_size] for start in range(0, len(batch), micro_batch_size)]


def rank_micro_batches(batch, micro_batch_size: int | None, world: World = World()) -> list:
    """This rank's micro-batches of the batch. One rank: micro_batches (as before). N ranks: each takes
    a contiguous share of the batch (sizes differ by at most one), cut into the same number of passes
    on every rank, at most micro_batch_size each: a sharded forward is a collective, so every rank
    must run as many. Together the ranks' micro-batches are the batch, in order."""
    if world.size == 1:
        return micro_batches(batch, micro_batch_size)
    bounds = [len(batch) * r // world.size for r in range(world.size + 1)]
    share = batch[bounds[world.rank] : bounds[world.rank + 1]]
    largest, smallest = math.ceil(len(batch) / world.size), len(batch) // world.size
    passes = 1 if micro_batch_size is None else math.ceil(largest / micro_batch_size)
    if passes > smallest:
        raise ValueError(
            f"a batch of {len(batch)} cannot be shared by {world.size} ranks in passes of at most "
            f"{micro_batch_size}: some rank would have an empty pass"
        )
    cuts = [len(share) * p // passes for p in range(passes + 1)]
    return [share[cuts[p] : cuts[p + 1]] for p in range(passes)]


def checkpoint_activations(causal_lm) -> None:
    """Recompute each decoder layer's activations in the backward pass instead of keeping them (less
    memory, about a third more compute; same gradients). Non-reentrant: it needs no input that
    requires grad, so it works for the frozen embeddings of LoRA and prompt tuning too."""
    causal_lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def start(log_name: str, threads: int, segment_seconds: float | None, resume_path: Path | None):
    """(world, log) of a training job: its ranks (distributed.start), progress lines from the first
    rank, torch's CPU threads; segments only with a resume state to continue from."""
    world = distributed.start()
    set_threads(threads)
    check_segment_args(segment_seconds, resume_path)
    return world, Log(log_name, quiet=not world.main)


class Log:
    """Progress lines to the job's log (stdout is redirected there by the rule)."""

    def __init__(self, prefix: str, quiet: bool = False):
        self.prefix, self.start, self.quiet = prefix, time.perf_counter(), quiet  # quiet: ranks but the first

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.prefix} {time.perf_counter() - self.start:7.1f}s] {message}", flush=True)


def save_resume_state(path: Path, model, optimizer, state: dict, world: World = World()) -> None:
    """Save the model, the optimizer and the loop's `state` (with the "step" it saves) and the random
    generators. Atomic: a kill mid-write leaves the previous state intact. Sharded over several ranks:
    torch.distributed.checkpoint (ftscale.train.distributed.save_sharded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        **state,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }
    if world.size > 1:
        distributed.save_sharded(path, model, optimizer, state, world)
    else:
        tmp = path.with_suffix(".tmp")
        torch.save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp)
        os.replace(tmp, path)
    faults.point(f"resume:{state['step']}")  # fault-injection tests: killed with a state saved


def load_resume_state(path: Path | None, model, optimizer, world: World = World(), strict: bool = True) -> dict | None:
    """Load a saved state into the model and optimizer (in place) and the random generators; the
    loop's state, or None where nothing was saved."""
    if path is None or not path.exists():
        return None
    state = torch.load(path, weights_only=False, map_location="cpu")  # load_state_dict moves it to the model
    if "shards" in state:  # a pointer to the sharded state saved by world.size ranks
        state = distributed.load_sharded(path, state, model, optimizer, world)
    else:
        model.load_state_dict(state["model"], strict=strict)
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def remove_resume_state(path: Path | None, world: World = World()) -> None:
    """Once the job's outputs are complete: rank 0 removes it. No barrier: every rank has passed the
    final gather of the weights (a collective, after any save of the state), and the others must not
    wait in a collective while rank 0 builds and writes the model (a 16B one: past any timeout)."""
    if path and world.main:
        path.unlink(missing_ok=True)
        shutil.rmtree(distributed.shards_root(path), ignore_errors=True)


def segment_over(started: float, segment_seconds: float | None, step: int) -> bool:
    """Whether the segment is over after `step`: this process has trained for segment_seconds (None:
    no segments) since `started` (time.perf_counter()), the job's deadline passed or SLURM's warning
    signal came (ftscale.runtime.jobs)."""
    if segment_seconds is None:
        return False
    faults.signal_point(str(step))  # tests: the warning signal at a fixed step
    return time.perf_counter() - started >= segment_seconds or jobs.segment_stop_due()


def check_segment_args(segment_seconds: float | None, resume_path: Path | None) -> None:
    """Refuses a segment without a limit or a place to save; a segmented job catches SLURM's warning."""
    if segment_seconds is not None and (segment_seconds <= 0 or resume_path is None):
        raise ValueError(
            f"segment_seconds={segment_seconds!r} needs a positive limit and a resume_path "
            f"(got resume_path={resume_path})"
        )
    if segment_seconds is not None:
        jobs.catch_stop_signal()


def derive_seed(*parts) -> int:
    """A stable 31-bit seed from any parts (not Python's salted hash)."""
    import hashlib

    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Steps:
    """What a job brings to the shared loop (run_loop): its steps, as data and small callables."""

    total: int  # optimizer steps of the whole run
    lr: Callable[[int], float]  # the learning rate of step s (0-based)
    backward: Callable[[int], None]  # forward and backward of step s's batch (its gradients)
    after: Callable[[int, float], str | None]  # after the update of step s (1-based), at that lr: evaluate,
    # log, checkpoint; a reason to stop (diverged, patience) or None
    save_due: Callable[[int], bool]  # whether the resume state is saved after step s
    state: Callable[[], dict]  # the job's resumable state besides the step ...
    restore: Callable[[dict], None]  # ... and putting it back


def run_loop(
    steps: Steps,
    model,
    optimizer,
    world: World,
    resume_path: Path | None,
    segment_seconds: float | None,
    log: Log,
    strict: bool = True,
    curves: tracking.Curves = tracking.NO_CURVES,
) -> tuple[int, str | None]:
    """Train from the saved state (if any) until steps.total or a stop; returns the step reached and
    the stop reason (None: the cap). Each step: lr, gradients, update, then the job's hooks; the
    resume state where the job asks for it; after segment_seconds, save and raise SegmentEnd.
    curves (ftscale.runtime.tracking): started at the step trained from, told each step's time,
    flushed with each save; the job records its points and closes it."""
    step = 0
    if state := load_resume_state(resume_path, model, optimizer, world, strict=strict):
        step = state["step"]
        steps.restore(state)
        log(f"resumed from {resume_path} at step {step}")
    curves.start(step)

    def save():
        save_resume_state(resume_path, model, optimizer, {"step": step, **steps.state()}, world)
        curves.flush()

    model.train()
    started = time.perf_counter()
    while step < steps.total:
        step_began = time.perf_counter()
        lr = steps.lr(step)
        set_lr(optimizer, lr)
        steps.backward(step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        curves.trained(time.perf_counter() - step_began)
        step += 1
        if stop := steps.after(step, lr):
            return step, stop
        if resume_path and step < steps.total and steps.save_due(step):
            save()
        if step < steps.total and world.agree(segment_over(started, segment_seconds, step)):
            save()
            raise SegmentEnd(step)
    return step, None
