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


def build(root: Path) -> Path:
    """root/stream (pretraining tokens), root/task/{train,dev} (32 and 16 pairs), root/base (the model)."""
    lines = synthetic.pretrain_text("en", 300, 0) + synthetic.pretrain_text("de", 300, 1)
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokens.write_pretrain_stream(tokenizer, lines, root / "stream")
    pairs = synthetic.translation_pairs("en", "de", 48, 2)
    tokens.write_task_split(tokenizer, pairs[:32], root / "task" / "train")
    tokens.write_task_split(tokenizer, pairs[32:], root / "task" / "dev")
    pretrain.pretrain(
        size=SIZE,
        vocab_size=300,
        train_tokens=root / "stream" / "tokens.npy",
        val_tokens=root / "stream" / "tokens.npy",
        tokens=4096,
        seq_len=32,
        batch_size=8,
        lr_max=1e-2,
        lr_min=1e-3,
        warmup_steps=2,
        parameter_scaling=False,
        seed=0,
        out_dir=root / "base",
        **PRETRAIN_OPTIONS,
    )
    return root
