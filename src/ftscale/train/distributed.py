"""Sharded training on several processes (PyTorch FSDP2): what the one training loop needs to run as
N ranks. With one process (no torchrun) every helper here is the identity or the plain call, so the
1-process path computes exactly what it did before (bitwise on CPU).

How a sharded step stays the same optimizer step (tests/distributed/):
- every rank builds the same batch and takes its own share of it (training.rank_micro_batches);
- each rank's loss is its share's part of the whole batch's mean (pretraining: weighted by windows;
  finetuning: summed NLL over the WHOLE batch's target-token count), so the ranks' gradients add up
  to the whole batch's: every FSDP unit reduces them with a SUM (divide factor 1), not its default
  average, after the batch's last micro-batch for PET and after every one for full-model training
  (sync_gradients);
- the logged loss is the sum over ranks (total), and a time-limited segment ends when any rank's
  time is up (agree), since every forward of a sharded model is a collective of all ranks.

How a sharded job holds its model (shard): built on the meta device on every rank, rank 0's weights
broadcast into the shards; on GPUs the units compute in bf16 (MixedPrecisionPolicy, fp32 weights,
gradients, reductions and optimizer state), with no autocast. On several nodes, HSDP: a 2-D mesh
(nodes x ranks per node, dims "replicate" and "shard"), each node holding one sharded copy, so the
weights' all-gathers stay within a node and only the gradients' reduction crosses nodes (device_mesh).

Plain torch, not accelerate (README "Sharded jobs"): Adafactor's factored state needs its DTensor
shapes set up front (init_adafactor_state), the loss normalisation is ours (not accelerate's mean
over accumulation steps), and the 1-process path stays free of wrappers.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ftscale.runtime import jobs
from ftscale.runtime.internals.transformers import adafactor_options


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int | None = None  # ranks per node (torchrun's LOCAL_WORLD_SIZE); None: all on one node

    @property
    def main(self) -> bool:
        """The rank that writes outputs and logs summaries."""
        return self.rank == 0

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` over all ranks (every rank gets it); itself with one rank."""
        if self.size == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value

    def agree(self, flag: bool) -> bool:
        """True on every rank if it is true on any: ranks must leave the loop together."""
        if self.size == 1:
            return flag
        vote = torch.tensor(int(flag), device=comms_device())
        dist.all_reduce(vote, op=dist.ReduceOp.MAX)
        return bool(vote.item())

    def from_main(self, flag: bool) -> bool:
        """Rank 0's flag, on every rank."""
        if self.size == 1:
            return flag
        vote = torch.tensor(int(flag), device=comms_device())
        dist.broadcast(vote, src=0)
        return bool(vote.item())

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def comms_device() -> torch.device:
    """Where collective buffers live: the rank's GPU under NCCL, the CPU under gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def start() -> World:
    """This process's place in the job, from the environment torchrun sets (RANK, WORLD_SIZE,
    LOCAL_RANK); joins the process group (NCCL on GPUs, gloo on the CPU) if there is more than one
    rank and it is not joined yet. No torchrun: one rank, nothing initialised."""
    world = World(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ["LOCAL_WORLD_SIZE"]) if "LOCAL_WORLD_SIZE" in os.environ else None,
    )
    if world.size > 1 and not dist.is_initialized():
        from ftscale.train.model import device

        on_gpu = device().type == "cuda"
        if on_gpu:
            torch.cuda.set_device(world.local_rank)
        # the timeout: the job's runtime (jobs.set_limits), so no rank gives up while the job may run
        dist.init_process_group("nccl" if on_gpu else "gloo", timeout=jobs.process_group_timeout())
    return world


def shard(
    model,
    decoder_layers,
    world: World,
    *,
    source=None,
    forward_methods: dict | None = None,
    param_dtype: torch.dtype | None = None,
):
    """Shard the model's parameters over the ranks with FSDP2 (every sharded job's model goes through
    here): each decoder layer is one unit (its parameters gathered for its forward and backward
    only), the rest (embeddings tied to the LM head, final norm, PET parameters outside the layers)
    the root unit. Every unit SUMS its gradients over the ranks (see the module's docstring).

    model: built on the meta device (no memory; at 16B a whole fp32 copy is 64 GB, on every rank's
    host and GPU otherwise). Once sharded, each rank allocates its shards on its device and rank 0's
    `source` (the same model with its weights, on the host; None on the other ranks) fills them one
    tensor at a time (set_model_state_dict broadcasting from rank 0), its buffers too (rotary
    frequencies: not in the state dict). A model with its weights on every rank needs no source.
    param_dtype: what the gathered parameters compute in (MixedPrecisionPolicy; the sharded
    parameters, their gradients and the optimizer stay fp32, and gradients are reduced in fp32).
    Default: model.GPU_COMPUTE_DTYPE on GPUs (a sharded model runs without autocast:
    model.autocast), the parameters' own (fp32) on the CPU.
    forward_methods (name -> callable) become methods of the root run as forwards, for callers that
    use parts of the model rather than its forward (finetune's target-only LM head).
    One rank: the model as it is."""
    if world.size == 1:
        return model
    from ftscale.train.model import GPU_COMPUTE_DTYPE, device

    if param_dtype is None and device().type == "cuda":
        param_dtype = GPU_COMPUTE_DTYPE
    shard_units(model, decoder_layers, param_dtype, forward_methods or {}, device_mesh(world))
    if any(p.is_meta for p in model.parameters()):
        model.to_empty(device=device())
        load_from_main(model, source, world)
    return model


def mesh_shape(world: World) -> tuple[int, int] | None:
    """(nodes, ranks per node) of a job on several nodes, its HSDP mesh; None on one node (FSDP over all
    ranks). The ranks fill the nodes in order (torchrun and srun's block distribution), so the ranks of
    a node are one contiguous row of the mesh: its "shard" group."""
    per_node = world.local_size or world.size
    if per_node >= world.size:
        return None
    if world.size % per_node:
        raise ValueError(f"{world.size} ranks are not whole nodes of {per_node} (LOCAL_WORLD_SIZE)")
    return world.size // per_node, per_node


def device_mesh(world: World):
    """The HSDP mesh (mesh_shape: dims "replicate" over nodes, "shard" within one), or None: FSDP's
    default, every rank one shard."""
    shape = mesh_shape(world)
    if shape is None:
        return None
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(comms_device().type, shape, mesh_dim_names=("replicate", "shard"))


def shard_units(model, decoder_layers, param_dtype: torch.dtype | None, forward_methods: dict, mesh=None) -> None:
    """The FSDP2 units of `shard`, its tensors left where they are (bench/bench_memory.py measures
    this very set-up under FakeTensorMode): each decoder layer a unit and the root the rest, under
    MixedPrecisionPolicy (param_dtype gathered, fp32 reduced; None: no policy), every unit summing.
    mesh: a 2-D HSDP mesh (device_mesh), or None: one shard per rank."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=None if param_dtype is None else torch.float32)
    for layer in decoder_layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for unit in units(model):  # the setters act on one unit's own parameters, not its sub-units'
        unit.set_gradient_divide_factor(1.0)  # sum, not mean, over ranks
        unit.set_force_sum_reduction_for_comms(True)  # gloo has no pre-multiplied sum
    for name, method in forward_methods.items():
        setattr(model, name, method)
        register_fsdp_forward_method(model, name)


def load_from_main(model, source, world: World) -> None:
    """Rank 0's `source` weights and buffers into the sharded model (every rank calls it).

    A module reached by two paths (peft's prompt tuning names the embeddings `word_embeddings` too)
    is loaded by its first path only, as set_model_state_dict walks the model (named_modules' order)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if world.main and source is None:
        raise ValueError("a model built on the meta device needs rank 0's source of its weights")
    first_paths = {path for path, _ in model.named_modules()}

    def by_first_path(keys) -> set:
        return {key for key in keys if key.rpartition(".")[0] in first_paths}

    full = {}
    if world.main:
        state = source.state_dict()
        full = {key: state[key] for key in by_first_path(state)}
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)  # checked below
    loaded = set_model_state_dict(model, full, options=options)
    if loaded.unexpected_keys or set(loaded.missing_keys) & by_first_path(model.state_dict()):
        raise ValueError(
            f"rank 0's weights do not fit the sharded model: missing {loaded.missing_keys}, "
            f"unexpected {loaded.unexpected_keys}"
        )
    buffers = dict(source.named_buffers()) if world.main else {}
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if world.main:
                buffer.copy_(buffers[name])
            dist.broadcast(buffer, src=0)


def sync_gradients(model, last: bool) -> None:
    """Before each micro-batch's backward: when to reduce the gradients over the ranks.

    Deferring the reduce-scatter to the batch's last micro-batch (FSDP2's set_requires_gradient_sync)
    makes one collective per unit a step instead of one per micro-batch, but until then each rank
    adds its micro-batches' gradients UNSHARDED, in fp32: 4 bytes per trainable parameter on every
    rank. Parameter-efficient methods train a small part of the model (the base is frozen), so they
    defer. Full-model training (FMT, pretraining) would hold the whole model's fp32 gradient on every
    rank (64 GB at 16B), the memory sharding exists to save, so it reduces after every micro-batch.
    Nothing for a model not sharded."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        if not hasattr(model, "_ftscale_defers_sync"):  # decided once: which parameters train is fixed
            model._ftscale_defers_sync = any(not p.requires_grad for p in model.parameters())
        model.set_requires_gradient_sync(last or not model._ftscale_defers_sync)


def units(model) -> list:
    """The model's FSDP units (the root and every sharded submodule); none for a model not sharded."""
    from torch.distributed.fsdp import FSDPModule

    return [module for module in model.modules() if isinstance(module, FSDPModule)]


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded (DTensor) parameter; a plain tensor as it is."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def init_adafactor_state(optimizer) -> None:
    """Set up Adafactor's state for sharded parameters before its first step. transformers' Adafactor
    creates its factored second moments as plain tensors, which cannot mix with a sharded parameter's
    gradient; created here from the parameter itself, they are DTensors: the row statistics sharded
    like the rows, the column statistics whole on every rank (a mean over all rows), so the update is
    the unsharded one. Plain parameters keep Adafactor's own lazy initialisation."""
    from torch.distributed.tensor import DTensor, Replicate

    for group in optimizer.param_groups:
        for p in group["params"]:
            if not isinstance(p, DTensor) or optimizer.state[p]:
                continue
            factored, first_moment = adafactor_options(optimizer, group, p.shape)
            zeros = torch.zeros_like(p)
            state = {"step": 0, "RMS": 0}
            if first_moment:
                state["exp_avg"] = zeros.clone()
            if factored:
                state["exp_avg_sq_row"] = zeros.mean(dim=-1)
                # whole on every rank: replicated along each mesh dim (one for FSDP, two for HSDP)
                state["exp_avg_sq_col"] = zeros.mean(dim=-2).redistribute(placements=[Replicate()] * p.device_mesh.ndim)
            else:
                state["exp_avg_sq"] = zeros.clone()
            optimizer.state[p] = state


# Sharded resume state: the model's and optimizer's shards through torch.distributed.checkpoint (one
# directory per save, under <resume stem>.shards/), each rank's loop state (step, history, rng, its
# shard of the best weights...) in a file of its own there; then rank 0 replaces the resume file
# itself with a pointer to that directory, atomically, so a kill at any moment leaves the previous
# complete state. Resuming needs the same number of ranks (the plan gives a job the same GPUs).


def shards_root(resume_path: Path) -> Path:
    return resume_path.with_name(f"{resume_path.stem}.shards")


def optimizer_tensors(model, optimizer) -> dict:
    """The optimizer's tensors by parameter name (RMS is recomputed before each use: not state)."""
    names = {p: name for name, p in model.named_parameters()}
    return {
        names[p]: {k: v for k, v in state.items() if torch.is_tensor(v) and k != "RMS"}
        for p, state in optimizer.state.items()
    }


def optimizer_steps(model, optimizer) -> dict:
    names = {p: name for name, p in model.named_parameters()}
    return {names[p]: state["step"] for p, state in optimizer.state.items()}


def save_sharded(resume_path: Path, model, optimizer, loop_state: dict, world: World) -> None:
    import torch.distributed.checkpoint as dcp

    step_dir = shards_root(resume_path) / f"step{loop_state['step']}"
    if world.main:
        shutil.rmtree(step_dir, ignore_errors=True)
    world.barrier()
    dcp.save({"model": model.state_dict(), "optimizer": optimizer_tensors(model, optimizer)}, checkpoint_id=step_dir)
    torch.save({**loop_state, "optimizer_steps": optimizer_steps(model, optimizer)}, step_dir / f"rank{world.rank}.pt")
    world.barrier()  # every rank's part written before the pointer moves
    if world.main:
        tmp = resume_path.with_suffix(".tmp")
        torch.save({"shards": step_dir.name, "ranks": world.size}, tmp)
        os.replace(tmp, resume_path)
        for old in shards_root(resume_path).iterdir():
            if old != step_dir:
                shutil.rmtree(old, ignore_errors=True)
    world.barrier()


def load_sharded(resume_path: Path, pointer: dict, model, optimizer, world: World) -> dict:
    """Load the saved shards into the model and optimizer (in place); this rank's loop state."""
    import torch.distributed.checkpoint as dcp

    if pointer["ranks"] != world.size:
        raise ValueError(
            f"{resume_path}: saved by {pointer['ranks']} ranks, resumed by {world.size}; "
            f"resume with the same number of GPUs or delete it to start over"
        )
    step_dir = shards_root(resume_path) / pointer["shards"]
    init_adafactor_state(optimizer)  # the tensors to load into
    state = {"model": model.state_dict(), "optimizer": optimizer_tensors(model, optimizer)}
    dcp.load(state, checkpoint_id=step_dir)
    model.load_state_dict(state["model"])
    loop_state = torch.load(step_dir / f"rank{world.rank}.pt", weights_only=False, map_location="cpu")
    steps = loop_state.pop("optimizer_steps")
    for name, p in model.named_parameters():
        if name in steps:
            optimizer.state[p]["step"] = steps[name]
    return loop_state


def full_state_dict(model, world: World) -> dict | None:
    """The whole model's state dict on the host of rank 0 (None elsewhere), gathered from the shards
    (a collective: every rank calls it); the model's own state dict with one rank."""
    if world.size == 1:
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return full if world.main else None


def unsharded(model, world: World, build):
    """A plain (unsharded) copy of the model for save_pretrained, on rank 0: build() makes the same
    architecture, the gathered weights go in (one fp32 copy on the host, as the planner counts).
    The model itself with one rank; None on other ranks. Every rank must call it."""
    if world.size == 1:
        return model
    full = full_state_dict(model, world)
    if full is None:
        return None
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the run's generator be
        plain = build()
    plain.load_state_dict(full)
    return plain
