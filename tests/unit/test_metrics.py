"""Generation metrics on every language (ftscale.evaluate.metrics) and `ftscale score`.

ROUGE-L expectations are hand counts: the tokens of each side, their longest common subsequence
(LCS), P = LCS / hypothesis tokens, R = LCS / reference tokens, F = 2PR / (P + R)."""

import json

import pytest
import sacrebleu

from ftscale import cli
from ftscale.evaluate import metrics

# Unsegmented Chinese, as real En-Zh references are.
ZH_HYP = ["我喜欢吃苹果。", "今天天气很好，我们去公园散步。", "他昨天买了一本新书。"]
ZH_REF = ["我喜欢吃香蕉。", "今天天气不错，我们去公园散步吧。", "他昨天买了一本书。"]


def test_fixed_strings_in_a_space_separated_language():
    perfect = metrics.translation_metrics(["der hund sieht die katze"], ["der hund sieht die katze"], "de")
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    assert perfect["bleu_signature"].startswith("nrefs:1") and "|tok:13a|" in perfect["bleu_signature"]
    partial = metrics.translation_metrics(["der hund sieht den mann"], ["der hund sieht die katze"], "de")
    assert 0 < partial["bleu"] < 100 and 0 < partial["chrf"] < 100
    # LCS "the cat sat" of 3 tokens, P = 3/4, R = 3/3 -> F = 6/7.
    assert metrics.summarization_metrics(["the cat sat down"], ["the cat sat"])["rougeL"] == pytest.approx(100 * 6 / 7)


def test_chinese_bleu_is_sacrebleus_zh_tokenization():
    scores = metrics.translation_metrics(ZH_HYP, ZH_REF, "zh")
    zh = sacrebleu.corpus_bleu(ZH_HYP, [ZH_REF], tokenize="zh")
    thirteen_a = sacrebleu.corpus_bleu(ZH_HYP, [ZH_REF], tokenize="13a")
    assert scores["bleu"] == pytest.approx(zh.score)
    assert abs(zh.score - thirteen_a.score) > 10  # 13a sees each unsegmented sentence as a few words
    assert "|tok:zh|" in scores["bleu_signature"]
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(ZH_HYP, [ZH_REF]).score)


@pytest.mark.parametrize(
    "lang, tokenizer",
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zho_Hans", "zh"),
        ("ZH_Hant", "zh"),
        ("de", "13a"),
        ("en", "13a"),
        ("fr", "13a"),
        (None, "13a"),
        ("", "13a"),
    ],
)
def test_bleu_tokenizer_follows_the_target_language(lang, tokenizer):
    assert metrics.bleu_tokenizer(lang) == tokenizer


def test_japanese_is_not_scored_with_13a():
    # ja-mecab where MeCab and its dictionary are installed, else character n-grams: never 13a,
    # which would see a whole unsegmented sentence as one word.
    hyp, ref = ["私は昨日新しい本を買いました。"], ["私は昨日本を買いました。"]
    tokenizer = metrics.bleu_tokenizer("ja")
    assert tokenizer in ("ja-mecab", "char")
    scores = metrics.translation_metrics(hyp, ref, "jpn_Jpan")
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyp, [ref], tokenize=tokenizer).score)
    assert scores["bleu"] > 0 == sacrebleu.corpus_bleu(hyp, [ref], tokenize="13a").score


def test_rouge_tokens_keep_words_of_any_script_and_split_han():
    assert metrics.rouge_tokens("Der Bär läuft über die Straße.") == ["der", "bär", "läuft", "über", "die", "straße"]
    assert metrics.rouge_tokens("L'été à Paris") == ["l", "été", "à", "paris"]
    assert metrics.rouge_tokens("GPT-4 模型很强！") == ["gpt", "4", "模", "型", "很", "强"]
    assert metrics.rouge_tokens("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # combining vowel signs stay in the word
    assert metrics.rouge_tokens("ＡＢＣ　１２") == ["abc", "12"]  # full-width forms (NFKC)
    assert metrics.rouge_tokens("カタカナとひらがな") == list("カタカナとひらがな")


# (hypothesis, reference, hand-computed F)
ROUGE_CASES = {
    # der bär läuft über die straße (6) vs der große bär läuft über die straße (7):
    # LCS 6, P = 6/7, R = 6/6 -> F = 12/13
    "de": ("Der große Bär läuft über die Straße.", "Der Bär läuft über die Straße.", 12 / 13),
    # nous sommes allés à paris l été dernier (8) vs l été dernier nous sommes allés à paris (8):
    # LCS "nous sommes allés à paris" 5, P = R = 5/8 -> F = 5/8
    "fr": ("Nous sommes allés à Paris l'été dernier.", "L'été dernier, nous sommes allés à Paris.", 5 / 8),
    # 我 喜 欢 苹 果 (5) vs 我 喜 欢 吃 苹 果 (6): LCS 5, P = 5/5, R = 5/6 -> F = 10/11
    "zh": ("我喜欢苹果", "我喜欢吃苹果", 10 / 11),
}


@pytest.mark.parametrize("lang", sorted(ROUGE_CASES))
def test_rouge_l_equals_the_hand_counted_lcs(lang):
    hyp, ref, expected = ROUGE_CASES[lang]
    assert metrics.rouge_l([hyp], [ref]) == [pytest.approx(expected)]


def test_summarization_metrics_average_and_split_by_language():
    langs = sorted(ROUGE_CASES)
    hyps, refs, expected = zip(*(ROUGE_CASES[lang] for lang in langs))
    result = metrics.summarization_metrics(list(hyps), list(refs), langs)
    assert result["rougeL"] == pytest.approx(100 * sum(expected) / 3)
    assert result["rougeL_by_lang"] == {lang: pytest.approx(100 * f) for lang, f in zip(langs, expected)}
    assert "rougeL_by_lang" not in metrics.summarization_metrics(list(hyps), list(refs))


def write(path, lines) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def test_score_command_writes_the_studys_metrics(tmp_path, capsys):
    hyp, ref, out = write(tmp_path / "hyp.txt", ZH_HYP), write(tmp_path / "ref.txt", ZH_REF), tmp_path / "s.json"
    assert cli.main(["score", "--hyp", hyp, "--ref", ref, "--lang", "zh", "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(ZH_HYP, [ZH_REF], tokenize="zh").score)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(ZH_HYP, [ZH_REF]).score)
    assert result["rougeL"] == pytest.approx(100 * sum(metrics.rouge_l(ZH_HYP, ZH_REF)) / 3)
    assert "|tok:zh|" in result["signature"] and set(result) >= {"bleu", "chrf", "rougeL", "signature"}
    assert result["signature"] in capsys.readouterr().out


@pytest.mark.parametrize(
    "hyp_lines, ref_lines, message",
    [
        (["a b", "c d"], ["a b"], "has 2 lines, --ref"),
        ([], [], "are empty: nothing to score"),
    ],
)
def test_score_command_bad_files_exit_2_with_one_line(tmp_path, capsys, hyp_lines, ref_lines, message):
    hyp, ref = write(tmp_path / "hyp.txt", hyp_lines), write(tmp_path / "ref.txt", ref_lines)
    assert cli.main(["score", "--hyp", hyp, "--ref", ref, "--lang", "de"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("ftscale score: ")


def test_score_command_missing_file_exits_2_with_one_line(tmp_path, capsys):
    ref = write(tmp_path / "ref.txt", ["a"])
    assert cli.main(["score", "--hyp", str(tmp_path / "none.txt"), "--ref", ref, "--lang", "de"]) == 2
    err = capsys.readouterr().err
    assert err == f"ftscale score: --hyp {tmp_path / 'none.txt'}: no such file\n"
    (tmp_path / "latin1.txt").write_bytes("Straße\n".encode("latin-1"))
    assert cli.main(["score", "--hyp", str(tmp_path / "latin1.txt"), "--ref", ref, "--lang", "de"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
