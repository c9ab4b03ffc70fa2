"""Training: the model, the one loop, sharding, pretraining and finetuning, fetching base models."""
