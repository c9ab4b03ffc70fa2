"""Generation metrics, the same for the workflow (evaluate, transfer) and `ftscale score`.

- BLEU (sacreBLEU): the tokenizer follows the target language (bleu_tokenizer). sacreBLEU's
  default, 13a, splits on spaces and punctuation, so unsegmented Chinese or Japanese would be
  scored as one "word" per sentence. The signature, which names the tokenizer, is kept per run.
- chrF (sacreBLEU): character n-grams, language-independent; its defaults.
- ROUGE-L (rouge-score): its LCS and F-measure, with a Unicode-aware tokenizer (rouge_tokens).
  rouge-score's own tokenizer keeps only [a-z0-9], so "Straße" becomes "stra e" and Chinese
  vanishes.
- BLEURT (ftscale.evaluate.bleurt): a learned metric, the paper's for translation; its checkpoint
  is fetched like a base model.

evaluate.metrics lists the ones an evaluation computes, each on the tasks of its kind (METRICS_OF).
"""

from __future__ import annotations

import unicodedata
from importlib.util import find_spec

import numpy as np

METRICS_OF = {"translation": ("bleu", "chrf", "bleurt"), "summarization": ("rougeL",)}  # by task type
LEARNED = ("bleurt",)  # scored by a fetched checkpoint (rules/fetch.smk, rule fetch_scorer)
# eval.json's keys of each metric, all dropped where evaluate.metrics leaves the metric out
RESULT_KEYS = {
    "bleu": ("bleu", "bleu_signature"),
    "chrf": ("chrf", "chrf_signature"),
    "rougeL": ("rougeL", "rougeL_by_lang", "rouge_tokenizer"),
    "bleurt": ("bleurt", "bleurt_checkpoint"),
}


def learned_metrics(metrics: list[str], task_type: str) -> list[str]:
    """The learned metrics of `metrics` (evaluate.metrics) that a task of this type is scored with."""
    return [m for m in metrics if m in LEARNED and m in METRICS_OF[task_type]]


def lexical_metrics(task_type: str) -> list[str]:
    """The metrics a task of this type is scored with that need no fetched checkpoint: what the
    zero- and few-shot evaluation computes (ftscale.evaluate.transfer)."""
    return [m for m in METRICS_OF[task_type] if m not in LEARNED]


def listed_only(result: dict, metrics: list[str] | None) -> dict:
    """`result` without the keys of the metrics `metrics` leaves out (None: all kept)."""
    if metrics is None:
        return result
    dropped = {key for metric, keys in RESULT_KEYS.items() if metric not in metrics for key in keys}
    return {k: v for k, v in result.items() if k not in dropped}


# ISO 639-2/3 codes (as Flores-200's zho_Hans, jpn_Jpan) of the languages with their own tokenizer.
_LANGUAGE_ALIASES = {"zho": "zh", "cmn": "zh", "jpn": "ja"}

# Scripts written without spaces between words: each character is one ROUGE token. Han (CJK
# unified ideographs, extension A, compatibility ideographs, extensions B-F), kana.
_CHARACTER_SCRIPTS = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F))


def primary_language(lang: str | None) -> str:
    """'zh' from 'zh', 'zh-CN', 'zh_Hant' or 'zho_Hans'; '' for no language."""
    code = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return _LANGUAGE_ALIASES.get(code, code)


def bleu_tokenizer(lang: str | None) -> str:
    """sacreBLEU's tokenizer for text in `lang`: `zh` for Chinese; for Japanese `ja-mecab` where
    MeCab and its IPA dictionary are installed (sacrebleu[ja]), else `char` (character n-grams:
    13a would see a whole unsegmented sentence as one word); `13a` for every other language."""
    language = primary_language(lang)
    if language == "zh":
        return "zh"
    if language == "ja":
        return "ja-mecab" if find_spec("MeCab") and find_spec("ipadic") else "char"
    return "13a"


def translation_metrics(hypotheses: list[str], references: list[str], lang: str | None) -> dict:
    """Corpus BLEU and chrF of hypotheses against one reference each, in target language `lang`,
    with both sacreBLEU signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(tokenize=bleu_tokenizer(lang)), CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def _is_character_script(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in _CHARACTER_SCRIPTS)


def rouge_tokens(text: str) -> list[str]:
    """ROUGE tokens of any script: NFKC-normalised and lower-cased; runs of letters, combining
    marks and digits are words (so "Straße", "été" and Devanagari words stay whole), Han and kana
    characters are one token each, everything else (spaces, punctuation) separates."""
    pieces = []
    for char in unicodedata.normalize("NFKC", text).lower():
        if _is_character_script(char):
            pieces.append(f" {char} ")
        elif unicodedata.category(char)[0] in "LMN":
            pieces.append(char)
        else:
            pieces.append(" ")
    return "".join(pieces).split()


class UnicodeTokenizer:
    """rouge-score's tokenizer interface (`tokenize(text) -> list[str]`) over rouge_tokens."""

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokens(text)


ROUGE_TOKENIZER = "unicode words, Han and kana characters one by one (ftscale.evaluate.metrics.rouge_tokens)"


def rouge_l(hypotheses: list[str], references: list[str]) -> list[float]:
    """ROUGE-L F-measure of each hypothesis against its reference, in [0, 1]."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())
    return [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references)]


def summarization_metrics(hypotheses: list[str], references: list[str], langs: list[str] | None = None) -> dict:
    """Mean ROUGE-L F-measure x 100; with the references' languages, also the mean per language
    (the tokenizer itself needs no language)."""
    scores = rouge_l(hypotheses, references)
    result = {"rougeL": 100 * float(np.mean(scores)), "rouge_tokenizer": ROUGE_TOKENIZER}
    if langs and any(langs):
        by_lang: dict[str, list[float]] = {}
        for lang, score in zip(langs, scores):
            by_lang.setdefault(lang or "unknown", []).append(score)
        result["rougeL_by_lang"] = {lang: 100 * float(np.mean(s)) for lang, s in sorted(by_lang.items())}
    return result


def task_metrics(
    task_type: str, hypotheses: list[str], references: list[str], target_lang: str | None, reference_langs
) -> dict:
    """The lexical metrics of a task of this type: BLEU and chrF in target_lang (translation), or
    ROUGE-L overall and per reference language (summarization: reference_langs, each reference's)."""
    if task_type == "translation":
        return translation_metrics(hypotheses, references, target_lang)
    return summarization_metrics(hypotheses, references, reference_langs)


def score_lines(hypotheses: list[str], references: list[str], lang: str | None) -> dict:
    """Every metric of the study on any system output (`ftscale score`): bleu, chrf, rougeL and
    the BLEU `signature`."""
    translation = translation_metrics(hypotheses, references, lang)
    return {
        "bleu": translation["bleu"],
        "chrf": translation["chrf"],
        "rougeL": summarization_metrics(hypotheses, references)["rougeL"],
        "signature": translation["bleu_signature"],
        "chrf_signature": translation["chrf_signature"],
        "rouge_tokenizer": ROUGE_TOKENIZER,
        "lang": lang,
        "lines": len(hypotheses),
    }
