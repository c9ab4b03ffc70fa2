"""Zero- and few-shot evaluation (ftscale.evaluate.transfer): prompt construction, and the job end to end on
a small saved model with locally built splits: translation, and summarization 1-shot scored with ROUGE-L."""

import json

import numpy as np
import pytest

from ftscale.data import common, sources, tokens
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


def articles(n: int, offset: int = 0) -> list[dict]:
    """n summarization records in two languages: a prefixed document and its summary."""
    rows = []
    for i in range(n):
        lang = ("en", "de")[i % 2]
        words = " ".join(WORDS[(i + offset + j) % 6] for j in range(8))
        prefix = common.SUMMARIZATION_PREFIX.format(language=common.LANGUAGE_NAMES[lang])
        rows.append(
            {"source": f"{prefix}{words} {i + offset}", "target": f"{WORDS[(i + offset) % 6]} {i}", "lang": lang}
        )
    return rows


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    lines = [r["source"] for r in records("en", 30)] + [r["target"] for r in records("en", 30)] + ["fr zh"] * 5
    lines += [r["source"] for r in articles(20)] + [r["target"] for r in articles(20)]
    tokenizer = tokens.train_tokenizer(lines, 300)
    tokenizer.save(str(root / "tokenizer.json"))
    splits = {
        "test": records("en", 12),
        "dev": records("en", 8, offset=3),
        "zs_fr": records("fr", 6),
        "zs_zh": records("zh", 5),
        "sum_test": articles(10),
        "sum_dev": articles(6, offset=20),
    }
    for name, rows in splits.items():
        tokens.write_task_split(tokenizer, rows, root / name)
        sources.write_jsonl(rows, root / f"{name}.jsonl")
    new_model(SIZE, 300, 256, seed=0).save_pretrained(str(root / "base"))
    integrity.seal(root / "base")  # as the pretrain job does: load_model checks it
    # a random model with tied embeddings repeats its last input token (<sep>: an empty text); an
    # untied one writes words
    new_model({**SIZE, "tied_embeddings": False}, 300, 256, seed=2).save_pretrained(str(root / "untied"))
    integrity.seal(root / "untied")
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
        task_type="translation",
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
        task_type="translation",
        target_lang="de",
        out=tmp_path / "t.json",
        threads=1,
    )
    assert result == {"status": "diverged"} and json.loads((tmp_path / "t.json").read_text()) == result


def test_summarization_one_shot_prompt_is_one_article_and_summary_then_the_test_article(study):
    test, dev = tokens.TaskSplit(study / "sum_test"), tokens.TaskSplit(study / "sum_dev")
    max_source, max_target = 24, 6  # cuts the documents: the demonstration is cut as in finetuning
    prompts = transfer.few_shot_prompts(
        test, dev, shots=1, count=len(test), max_source=max_source, max_target=max_target, seed=3
    )
    demos = [dev.example(i, max_source, max_target) for i in range(len(dev))]
    assert all(len(s) == max_source for s, _ in demos)  # every document longer than the cut
    for i, prompt in enumerate(prompts):
        article = test.example(i, max_source, 0)[0].tolist()
        layouts = [[BOS_ID, *s.tolist(), SEP_ID, *t.tolist(), EOS_ID, BOS_ID, *article, SEP_ID] for s, t in demos]
        assert prompt in layouts  # one demonstration (article, summary, </s>), then the test article
    assert len({tuple(p[: p.index(EOS_ID)]) for p in prompts}) > 1  # the demonstration is drawn per prompt


def test_summarization_one_shot_is_scored_with_rouge_l(study, tmp_path):
    """The job's ROUGE-L equals rouge-score's own on the same generations: references are the
    model's own output for half the articles, so the score is neither 0 nor 100."""
    from rouge_score import rouge_scorer

    from ftscale.config import schema_default
    from ftscale.evaluate.decode import decode_prompts
    from ftscale.evaluate.metrics import UnicodeTokenizer
    from ftscale.train.model import base_format, load_model

    test, dev = tokens.TaskSplit(study / "sum_test"), tokens.TaskSplit(study / "sum_dev")
    options = dict(shots=1, count=8, max_source=24, max_target=6, seed=0)
    fmt = base_format(study / "untied")
    model = load_model(study / "untied", schema_default("evaluate", "weights_dtype"))
    tokenizer = tokens.load_tokenizer(study / "tokenizer.json")
    generated = decode_prompts(model, transfer.few_shot_prompts(test, dev, fmt=fmt, **options), 8, 4, fmt)
    hypotheses = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    rows = articles(10)
    for i in range(0, 8, 2):
        rows[i]["target"] = hypotheses[i] + " vogel"  # overlaps its hypothesis: ROUGE-L above 0
    sources.write_jsonl(rows, tmp_path / "references.jsonl")
    result = transfer.run_job(
        base=study / "untied",
        checkpoint=None,
        method="base",
        summary=None,
        tokenizer=study / "tokenizer.json",
        zero_shot={},
        test=study / "sum_test",
        references=tmp_path / "references.jsonl",
        demos=study / "sum_dev",
        shots=[options["shots"]],
        few_shot_examples=options["count"],
        max_source=options["max_source"],
        max_target=options["max_target"],
        max_new_tokens=8,
        batch_size=4,
        seed=options["seed"],
        task_type="summarization",
        target_lang=None,
        out=tmp_path / "t.json",
        threads=1,
    )
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())
    direct = [scorer.score(r["target"], h)["rougeL"].fmeasure for r, h in zip(rows, hypotheses)]
    assert 0 < np.mean(direct) < 1
    assert result["few_shot_1_rougeL"] == pytest.approx(100 * np.mean(direct))
    by_lang = result["few_shot_1"]["rougeL_by_lang"]
    for lang in ("en", "de"):
        assert by_lang[lang] == pytest.approx(100 * np.mean([d for d, r in zip(direct, rows) if r["lang"] == lang]))
    assert result["few_shot_1"]["sample"] == hypotheses[0]
    assert result["rouge_tokenizer"] == result["few_shot_1"]["rouge_tokenizer"]
    assert not any("bleu" in key or "chrf" in key or key.startswith("zero_shot") for key in result)
