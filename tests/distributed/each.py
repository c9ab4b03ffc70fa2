"""What the tests' 2-rank launches call (each torchrun launch costs seconds of imports per rank; the
process group is joined once, ftscale.train.distributed.start): several finetuning runs one after
another in the same ranks, and training steps under plain SGD. Each also runs as one process (no
torchrun), the reference the ranks are compared with."""
from pathlib import Path

import torch

from ftscale.data.tokens import TaskSplit, load_stream
from ftscale.train import distributed, finetune, pretrain


def finetune_each(runs: list[dict]) -> None:
    for kwargs in runs:
        finetune.finetune(**kwargs)


def copied(state: dict | None) -> dict | None:
    """A state dict's tensors as they are now (one rank's state dict holds the live parameters)."""
    return None if state is None else {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def sgd_steps(runs: list[dict]) -> None:
    """Per run: `steps` optimizer steps of plain SGD (an update proportional to the gradient, so a
    gradient off by a factor shows; Adafactor's update does not depend on the gradient's scale),
    through the training loops' own model building, sharding and accumulation. Rank 0 saves to
    `out` the weights at the start and at the end (gathered from the shards), the buffers and the
    losses of each step."""
    world = distributed.start()
    for run in runs:
        torch.manual_seed(run["seed"])
        if run["kind"] == "pretrain":
            model = pretrain.model_to_train(run["size"], run["vocab_size"], run["seq_len"], run["seed"], world)
            stream = load_stream(run["train_tokens"])
            per_step = run["batch_size"] * run["seq_len"]
            batches = [pretrain.windows(stream, step * per_step, run["batch_size"], run["seq_len"])
                       for step in range(run["steps"])]
            accumulate = pretrain.accumulate_gradients
        else:
            model = finetune.model_to_train(run["base_dir"], run["kind"], run["pet_size"], run["seed"], world)
            examples = finetune.encode_split(TaskSplit(run["train_dir"]), range(run["batch_size"] * run["steps"]), 32, 32)
            batches = [examples[step * run["batch_size"]:(step + 1) * run["batch_size"]] for step in range(run["steps"])]
            accumulate = lambda *args: finetune.accumulate_gradients(*args)[0]   # noqa: E731 - the loss, not the count
        start = copied(distributed.full_state_dict(model, world))
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=run["lr"])
        losses = []
        for batch in batches:
            losses.append(world.total(accumulate(model, batch, run["micro_batch_size"], world)).item())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        end = distributed.full_state_dict(model, world)
        if world.main:
            torch.save({"start": start, "end": copied(end), "losses": losses,
                        "buffers": {n: b.cpu() for n, b in model.named_buffers()}}, Path(run["out"]))
