"""Tiny random base models of two architectures (LlamaForCausalLM, GPTNeoXForCausalLM) with their
own tokenizers, written with save_pretrained as a Hub model would be: what the hub tests finetune,
offline. The tokenizers differ as Hub ones do: Llama's has <s>, </s> and <pad>; GPT-NeoX's only
<|endoftext|> (BOS = EOS, no pad token, no sep token), as Pythia's."""

from pathlib import Path

import torch

from ftscale.data import synthetic

VOCAB = 400


def train_bpe(special: list[str]):
    """A byte-level BPE on the toy En/De text (the tiny study's languages)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    lines = synthetic.pretrain_text("en", 400, 1) + synthetic.pretrain_text("de", 400, 2)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=special,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def fast_tokenizer(special: list[str], **roles: str):
    """A transformers tokenizer of train_bpe(special), its bos/eos/pad tokens named in `roles`."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=train_bpe(special), **roles)


def llama_tokenizer():
    return fast_tokenizer(["<pad>", "<s>", "</s>"], bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def neox_tokenizer():
    end = "<|endoftext|>"
    return fast_tokenizer([end], bos_token=end, eos_token=end)


def random_model(model_class, config_class, seed: int, **config):
    """A model of random weights (seeded): VOCAB tokens, 4 heads, 512 positions, and `config`."""
    torch.manual_seed(seed)
    return model_class(config_class(vocab_size=VOCAB, num_attention_heads=4, max_position_embeddings=512, **config))


def llama(seed: int, hidden: int = 32, layers: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_key_value_heads=2)
    return random_model(LlamaForCausalLM, LlamaConfig, seed, **sizes, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def neox(seed: int, hidden: int = 32, layers: int = 2):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    sizes = dict(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers)
    return random_model(GPTNeoXForCausalLM, GPTNeoXConfig, seed, **sizes, bos_token_id=0, eos_token_id=0)


def save(model, tokenizer, directory: Path) -> str:
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return str(directory)


def base_models(root: Path) -> dict[str, str]:
    """A family's local base models, all with one tokenizer (a family shares its base model's):
    a Llama and a GPT-NeoX (the model-size axis), and an earlier 'revision' of the Llama (the
    pretraining-data axis). {name: directory}."""
    tokenizer = llama_tokenizer()
    return {
        "llama": save(llama(0), tokenizer, root / "llama"),
        "neox": save(neox(1, hidden=48), tokenizer, root / "neox"),
        "llama_early": save(llama(2), tokenizer, root / "llama-early"),
    }
