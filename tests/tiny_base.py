"""A tiny pretrained base model and a translation task, tokenized: the training tests' input
(the `base` fixture, tests/conftest.py)."""

from pathlib import Path

from ftscale.config import schema_default
from ftscale.data import synthetic, tokens
from ftscale.train import pretrain

SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
# What a config gives the training loops for the keys a study leaves out (the schema's defaults)
FINETUNE_OPTIONS = {
    key: schema_default("finetune", key) for key in ("lr_min_divisor", "warmup_steps", "dev_batch_size")
}
PRETRAIN_OPTIONS = {
    "val_windows": schema_default("pretrain", "val_windows"),
    "log_every": schema_default("pretrain", "log_every"),
    "checkpoint_every": schema_default("pretrain", "save_every"),
}


def pretrain_args(stream: Path, out: Path, **changed) -> dict:
    """pretrain()'s arguments for the base model of build() on `stream` (its tokens.npy), written to
    `out`, with `changed`."""
    return (
        dict(
            size=SIZE,
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
            out_dir=out,
            **PRETRAIN_OPTIONS,
        )
        | changed
    )


def finetune_args(root: Path, out: Path, **changed) -> dict:
    """finetune()'s arguments: FMT of build(root)'s base model on its task (16 examples), with `changed`
    (each test sets its learning rate, steps and seed)."""
    return (
        dict(
            base_dir=root / "base",
            method="fmt",
            pet_size=None,
            batch_size=4,
            parameter_scaling=False,
            max_epochs=100,
            eval_every=1,
            train_dir=root / "task" / "train",
            dev_dir=root / "task" / "dev",
            finetune_examples=16,
            max_source=32,
            max_target=32,
            out_dir=out,
            log_name="test",
            **FINETUNE_OPTIONS,
        )
        | changed
    )


def build(root: Path) -> Path:
    """root/stream (pretraining tokens), root/task/{train,dev} (32 and 16 pairs), root/base (the model)."""
    lines = synthetic.pretrain_text("en", 300, 0) + synthetic.pretrain_text("de", 300, 1)
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokens.write_pretrain_stream(tokenizer, lines, root / "stream")
    pairs = synthetic.translation_pairs("en", "de", 48, 2)
    tokens.write_task_split(tokenizer, pairs[:32], root / "task" / "train")
    tokens.write_task_split(tokenizer, pairs[32:], root / "task" / "dev")
    pretrain.pretrain(**pretrain_args(root / "stream" / "tokens.npy", root / "base"))
    return root
