"""Right-padded batches: the plain layout the training loop's packed rows (finetune.pack) are checked
against. Test-only: the training loop batches packed rows (finetune.make_batch); finetune.hidden_states
and target_nll still accept this layout (an attention mask instead of position ids)."""
import numpy as np
import torch

from ftscale.data.tokens import PAD_ID
from ftscale.finetune import IGNORE, encode


def pad(sequences: list[tuple[np.ndarray, int]]) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are IGNORE except on target tokens and the closing </s>."""
    length = max(len(ids) for ids, _ in sequences)
    input_ids = np.full((len(sequences), length), PAD_ID, dtype=np.int64)
    labels = np.full((len(sequences), length), IGNORE, dtype=np.int64)
    attention_mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, (ids, prompt) in enumerate(sequences):
        input_ids[row, :len(ids)] = ids
        labels[row, prompt:len(ids)] = ids[prompt:]
        attention_mask[row, :len(ids)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels)}


def collate(examples: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Right-padded batch of (source, target) pairs (see pad)."""
    return pad([encode(source, target) for source, target in examples])
