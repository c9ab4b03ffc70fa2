"""A tiny BLEURT-shaped checkpoint in bleurt-pytorch's layout (config.json of model_type bleurt,
`bleurt.*` weights, a SentencePiece spm.model trained here): tests/unit/test_bleurt.py and
bench/bench_bleurt.py build it; no download."""

import io
import json

import numpy as np
import torch

WORDS = "the cat dog sat on a mat red blue house tree runs quickly under over green small big".split()
SPECIAL = ["[CLS]", "[SEP]", "[MASK]"]


def sentences(n: int, seed: int, words: tuple[int, int] = (3, 9)) -> list[str]:
    """n sentences of WORDS, each of words[0] to words[1] - 1 words."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(*words)))) for _ in range(n)]


def bleurt_state(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Random weights named and shaped as bleurt-pytorch's BleurtForSequenceClassification."""
    g = torch.Generator().manual_seed(seed)
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    width = config.get("embedding_size") or hidden
    shapes = {
        "bleurt.embeddings.word_embeddings.weight": (config["vocab_size"], width),
        "bleurt.embeddings.position_embeddings.weight": (config["max_position_embeddings"], width),
        "bleurt.embeddings.token_type_embeddings.weight": (2, width),
        "bleurt.embeddings.LayerNorm": width,
        "bleurt.pooler.dense.weight": (hidden, hidden),
        "bleurt.pooler.dense.bias": (hidden,),
        "classifier.weight": (1, hidden),
        "classifier.bias": (1,),
    }
    if config.get("embedding_size"):
        shapes |= {"bleurt.encoder.embedding_projection.weight": (hidden, width)}
        shapes |= {"bleurt.encoder.embedding_projection.bias": (hidden,)}
    for layer in range(config["num_hidden_layers"]):
        p = f"bleurt.encoder.layer.{layer}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes |= {p + name + ".weight": (hidden, hidden), p + name + ".bias": (hidden,)}
        shapes |= {p + "intermediate.dense.weight": (inner, hidden), p + "intermediate.dense.bias": (inner,)}
        shapes |= {p + "output.dense.weight": (hidden, inner), p + "output.dense.bias": (hidden,)}
        shapes |= {p + "attention.output.LayerNorm": hidden, p + "output.LayerNorm": hidden}
    state = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm"):
            state[name + ".weight"] = 1 + 0.1 * torch.randn(shape, generator=g)
            state[name + ".bias"] = 0.1 * torch.randn(shape, generator=g)
        else:
            state[name] = 0.3 * torch.randn(shape, generator=g)
    # a buffer older transformers saved with the weights (the Hub's BLEURT-20 files have it)
    state["bleurt.embeddings.position_ids"] = torch.arange(config["max_position_embeddings"])[None]
    return state


TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24}


def build_bleurt(
    directory, embedding_size: int | None, weights: str = "pytorch_model.bin", seed: int = 0, shape: dict = TINY
):
    """A BLEURT checkpoint of `shape` (default: tiny): a SentencePiece model trained here,
    config.json, random weights. Returns (directory, config, weights, the SentencePiece processor)."""
    import sentencepiece

    directory.mkdir(parents=True)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences(200, 1)),
        model_writer=model,
        vocab_size=40,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        pad_piece="[PAD]",
        unk_piece="[UNK]",
        user_defined_symbols=SPECIAL,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (directory / "spm.model").write_bytes(model.getvalue())
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(directory / "spm.model"))
    config = {
        "model_type": "bleurt",
        "architectures": ["BleurtForSequenceClassification"],
        "vocab_size": pieces.get_piece_size(),
        "embedding_size": embedding_size,
        "hidden_act": "gelu",
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        **shape,
    }
    (directory / "config.json").write_text(json.dumps(config))
    state = bleurt_state(config, seed)
    if weights.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(directory / weights))
    else:
        torch.save(state, directory / weights)
    return directory, config, state, pieces
