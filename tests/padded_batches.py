"""Right-padded batches of (source, target) pairs: the plain layout the training loop's packed rows
(finetune.pack) are checked against. finetune.pad is also the loop's own path for architectures that
do not pack (model.packs); collate, from raw pairs, is test-only."""

import numpy as np
import torch

from ftscale.data.tokens import OWN_FORMAT, PromptFormat
from ftscale.train.finetune import encode, pad


def collate(examples: list[tuple[np.ndarray, np.ndarray]], fmt: PromptFormat = OWN_FORMAT) -> dict[str, torch.Tensor]:
    """Right-padded batch of (source, target) pairs (see finetune.pad)."""
    return pad([encode(source, target, fmt) for source, target in examples])
