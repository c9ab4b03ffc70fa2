"""Evaluation of finetuned models: test loss and generation, zero-/few-shot transfer, metrics."""
