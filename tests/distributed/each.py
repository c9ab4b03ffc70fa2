"""What the tests' 2-rank launches call (each torchrun launch costs seconds of imports per rank; the
process group is joined once, ftscale.train.distributed.start): several finetuning runs one after
another in the same ranks, and training steps under plain SGD. Each also runs as one process (no
torchrun), the reference the ranks are compared with."""

from pathlib import Path

import torch

from ftscale.data.tokens import TaskSplit, load_stream
from ftscale.train import distributed, finetune, pretrain, training


def finetune_each(runs: list[dict]) -> None:
    for kwargs in runs:
        finetune.finetune(**kwargs)


def copied(state: dict | None) -> dict | None:
    """A state dict's tensors as they are now (one rank's state dict holds the live parameters)."""
    return None if state is None else {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def model_and_batches(run: dict, world: distributed.World):
    """The run's model as the training loops build it (sharded over the ranks), its batches, and its
    accumulate_gradients (returning the loss)."""
    param_dtype = getattr(torch, run.get("param_dtype", "")) if run.get("param_dtype") else None
    if run["kind"] == "pretrain":
        model = pretrain.model_to_train(
            run["size"], run["vocab_size"], run["seq_len"], run["seed"], world, param_dtype=param_dtype
        )
        stream = load_stream(run["train_tokens"])
        per_step = run["batch_size"] * run["seq_len"]
        batches = [
            pretrain.windows(stream, step * per_step, run["batch_size"], run["seq_len"]) for step in range(run["steps"])
        ]
        return model, batches, pretrain.accumulate_gradients
    model = finetune.model_to_train(
        run["base_dir"], run["kind"], run["pet_size"], run["seed"], world, param_dtype=param_dtype
    )
    examples = finetune.encode_split(TaskSplit(run["train_dir"]), range(run["batch_size"] * run["steps"]), 32, 32)
    batches = [examples[step * run["batch_size"] : (step + 1) * run["batch_size"]] for step in range(run["steps"])]
    return model, batches, lambda *args: finetune.accumulate_gradients(*args)[0]


def sgd_steps(runs: list[dict]) -> None:
    """Per run: `steps` optimizer steps of plain SGD (an update proportional to the gradient, so a
    gradient off by a factor shows; Adafactor's update does not depend on the gradient's scale),
    through the training loops' own model building, sharding and accumulation. Rank 0 saves to
    `out` the weights at the start and at the end (gathered from the shards), the buffers, the
    losses of each step, the dtypes the first decoder layer computed in and the gradients had, and the
    mesh of the first trained parameter (shape, dim names, placements; None unsharded)."""
    world = distributed.start()
    for run in runs:
        model, batches, accumulate = model_and_batches(run, world)
        model.eval()  # no dropout (OPT's): 2 ranks would draw other random numbers than one process
        computed = set()
        layer = finetune.decoder_layers(finetune.causal_lm_of(model))[0]
        layer.register_forward_hook(lambda module, args, output, computed=computed: computed.add(str(output[0].dtype)))
        start = copied(distributed.full_state_dict(model, world))
        trainable = [p for p in model.parameters() if p.requires_grad]
        if run.get("optimizer") == "adafactor":  # the loops' own (its DTensor state: init_adafactor_state)
            optimizer = training.adafactor(trainable, run["lr"], False)
            distributed.init_adafactor_state(optimizer)
        else:
            optimizer = torch.optim.SGD(trainable, lr=run["lr"])
        losses, gradients = [], set()
        for batch in batches:
            losses.append(world.total(accumulate(model, batch, run["micro_batch_size"], world)).item())
            gradients |= {str(p.grad.dtype) for p in trainable}
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        end = copied(distributed.full_state_dict(model, world))
        mesh = getattr(trainable[0], "device_mesh", None)  # a DTensor's: how the ranks hold it
        if world.main:
            torch.save(
                {
                    "start": start,
                    "end": end,
                    "losses": losses,
                    "computed": computed,
                    "gradients": gradients,
                    "buffers": {n: b.cpu() for n, b in model.named_buffers()},
                    "mesh": None
                    if mesh is None
                    else (tuple(mesh.shape), mesh.mesh_dim_names, [str(p) for p in trainable[0].placements]),
                },
                Path(run["out"]),
            )
