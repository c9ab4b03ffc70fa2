"""What the tests' one 2-rank launch for several finetuning runs calls: the runs one after another
in the same ranks (each torchrun launch costs seconds of imports per rank; the process group is
joined once, ftscale.train.distributed.start)."""
from ftscale.train import finetune


def finetune_each(runs: list[dict]) -> None:
    for kwargs in runs:
        finetune.finetune(**kwargs)
