"""Zero- and few-shot evaluation (ftscale.evaluate.transfer): prompt construction, and the job end to end on
a small saved model with locally built splits."""

import json

import numpy as np
import pytest

from ftscale.data import sources, tokens
from ftscale.data.tokens import BOS_ID, EOS_ID, SEP_ID
from ftscale.evaluate import transfer
from ftscale.runtime import integrity
from ftscale.train.model import new_model

SIZE = {"layers": 1, "heads": 2, "head_dim": 8, "ffn_dim": 32, "model_dim": 16}
WORDS = ["hund", "katze", "maus", "vogel", "fisch", "pferd"]


def records(lang: str, n: int, offset: int = 0) -> list[dict]:
    """n distinct pairs."""
    return [
        {
            "source": f"{lang} {WORDS[(i + offset) % 6]} {WORDS[(i + offset + 1) % 6]} {i + offset}",
            "target": f"der {WORDS[(i + offset) % 6]} {i + offset}",
            "lang": lang,
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    lines = [r["source"] for r in records("en", 30)] + [r["target"] for r in records("en", 30)] + ["fr zh"] * 5
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokenizer.save(str(root / "tokenizer.json"))
    splits = {
        "test": records("en", 12),
        "dev": records("en", 8, offset=3),
        "zs_fr": records("fr", 6),
        "zs_zh": records("zh", 5),
    }
    for name, rows in splits.items():
        tokens.write_task_split(tokenizer, rows, root / name)
        sources.write_jsonl(rows, root / f"{name}.jsonl")
    new_model(SIZE, 300, 256, seed=0).save_pretrained(str(root / "base"))
    integrity.seal(root / "base")  # as the pretrain job does: load_model checks it
    return root


def test_few_shot_prompts_put_distinct_demonstrations_before_the_test_source(study):
    test, dev = tokens.TaskSplit(study / "test"), tokens.TaskSplit(study / "dev")
    prompts = transfer.few_shot_prompts(test, dev, shots=3, count=10, max_source=64, max_target=64, seed=7)
    assert len(prompts) == 10
    demos = {
        tuple([BOS_ID, *s.tolist(), SEP_ID, *t.tolist(), EOS_ID])
        for s, t in (dev.example(i, 64, 64) for i in range(len(dev)))
    }
    for i, prompt in enumerate(prompts):
        query = [BOS_ID, *test.example(i, 64, 0)[0].tolist(), SEP_ID]
        assert prompt[-len(query) :] == query
        context = prompt[: -len(query)]
        pieces, start = [], 0
        for end, token in enumerate(context):
            if token == EOS_ID:
                pieces.append(tuple(context[start : end + 1]))
                start = end + 1
        assert start == len(context) and len(pieces) == 3 and len(set(pieces)) == 3 and set(pieces) <= demos
    assert prompts == transfer.few_shot_prompts(test, dev, 3, 10, 64, 64, seed=7)  # seeded
    assert prompts != transfer.few_shot_prompts(test, dev, 3, 10, 64, 64, seed=8)
    zero = transfer.few_shot_prompts(test, dev, 0, 10, 64, 64, seed=7)
    assert zero == transfer.source_prompts(test, 64, 10)


def test_transfer_job_on_a_saved_model(study, tmp_path):
    kwargs = dict(
        base=study / "base",
        checkpoint=None,
        method="fmt",
        summary=None,
        tokenizer=study / "tokenizer.json",
        zero_shot={"fr": (study / "zs_fr", study / "zs_fr.jsonl"), "zh": (study / "zs_zh", study / "zs_zh.jsonl")},
        test=study / "test",
        references=study / "test.jsonl",
        demos=study / "dev",
        shots=[1, 2],
        few_shot_examples=6,
        max_source=32,
        max_target=32,
        max_new_tokens=8,
        batch_size=4,
        seed=0,
        threads=1,
        target_lang="de",
    )
    result = transfer.run_job(out=tmp_path / "a.json", **kwargs)
    assert result["status"] == "ok" and set(result["zero_shot"]) == {"fr", "zh"}
    assert result["zero_shot_bleu"] == pytest.approx(np.mean([result["zero_shot"][l]["bleu"] for l in ("fr", "zh")]))
    assert result["zero_shot_chrf"] == pytest.approx(np.mean([result["zero_shot"][l]["chrf"] for l in ("fr", "zh")]))
    for k in (1, 2):
        assert 0 <= result[f"few_shot_{k}_bleu"] <= 100 and 0 <= result[f"few_shot_{k}_chrf"] <= 100
    assert "|tok:13a|" in result["bleu_signature"]  # German target: sacreBLEU's 13a
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads(json.dumps(result))
    transfer.run_job(out=tmp_path / "b.json", **kwargs)
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()  # deterministic


def test_transfer_job_skips_a_diverged_run(study, tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({"status": "diverged"}))
    result = transfer.run_job(
        base=study / "base",
        checkpoint=study / "base",
        method="fmt",
        summary=tmp_path / "train.json",
        tokenizer=study / "tokenizer.json",
        zero_shot={},
        test=study / "test",
        references=study / "test.jsonl",
        demos=study / "dev",
        shots=[1],
        few_shot_examples=4,
        max_source=32,
        max_target=32,
        max_new_tokens=4,
        batch_size=4,
        seed=0,
        target_lang="de",
        out=tmp_path / "t.json",
        threads=1,
    )
    assert result == {"status": "diverged"} and json.loads((tmp_path / "t.json").read_text()) == result
