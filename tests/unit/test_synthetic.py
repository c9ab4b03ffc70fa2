"""The toy-language generator: determinism and the structure that makes translation non-trivial."""
import random
import re

import pytest

from ftscale.data import synthetic as s
from ftscale.data.synthetic import Entity, Event


def test_deterministic_per_seed_and_different_across_seeds():
    assert s.pretrain_text("de", 50, 1) == s.pretrain_text("de", 50, 1)
    assert s.pretrain_text("de", 50, 1) != s.pretrain_text("de", 50, 2)
    assert s.translation_pairs("en", "zh", 20, 3) == s.translation_pairs("en", "zh", 20, 3)
    assert s.summarization_examples(8, 4) == s.summarization_examples(8, 4)
    assert s.summarization_examples(8, 4) != s.summarization_examples(8, 5)
    assert s.split_seed(0, "task/train") == s.split_seed(0, "task/train") != s.split_seed(0, "task/test")


def test_german_articles_and_adjectives_agree_in_gender_and_case():
    de = s.GRAMMARS["de"]
    masculine = Entity(noun=0, adjectives=(0,))              # noun % 3 == 0: masculine
    feminine = Entity(noun=1, adjectives=(0,))
    nominative, accusative = de.noun_phrase(masculine, "nom"), de.noun_phrase(masculine, "acc")
    assert nominative[0] == "der" and accusative[0] == "den"
    assert nominative[1].endswith("e") and accusative[1].endswith("en")
    assert de.noun_phrase(feminine, "nom")[0] == de.noun_phrase(feminine, "acc")[0] == "die"
    assert de.noun_phrase(feminine, "dat")[0] == "der"
    indefinite = Entity(noun=2, definite=False, adjectives=(0,))   # neuter after "ein": strong -es
    assert de.noun_phrase(indefinite, "nom")[:1] == ["ein"] and de.noun_phrase(indefinite, "nom")[1].endswith("es")


def test_german_verb_second_and_verb_final_in_relative_clauses():
    de = s.GRAMMARS["de"]
    cat, dog = Entity(noun=5), Entity(noun=9)
    seeing = Event(verb=1, agent=dog, patient=cat)                     # verb 1: transitive
    words = de.clause(seeing)
    verb = de.verb_form(seeing)
    assert words.index(verb) == 2                                      # der hund VERB die katze
    fronted = de.clause(Event(verb=1, agent=dog, patient=cat, time=0))
    assert fronted[:2] == [de.lexicon["time"][0], verb]                # time VERB subject: inversion
    relative = Entity(noun=9, relative=Event(verb=1, agent=Entity(9), patient=Entity(noun=5)))
    clause = de.relative_clause(relative)
    assert clause[1] == "der" and clause[-2] == de.verb_form(relative.relative)   # verb last


def test_english_and_german_orders_differ_on_relative_clauses():
    event = Event(verb=4, agent=Entity(noun=9, relative=Event(verb=1, agent=Entity(9), patient=Entity(noun=5))),
                  patient=Entity(noun=7))
    en, de = s.GRAMMARS["en"].relative_clause(event.agent), s.GRAMMARS["de"].relative_clause(event.agent)
    assert en[1] == s.GRAMMARS["en"].verb_form(event.agent.relative)          # "that VERB the cat"
    assert de[-2] == s.GRAMMARS["de"].verb_form(event.agent.relative)         # ", der die katze VERB ,"


def test_chinese_uses_classifiers_by_noun_class():
    zh = s.GRAMMARS["zh"]
    for noun in range(4):
        phrase = zh.noun_phrase(Entity(noun=noun), "nom")
        assert phrase[:2] == ["na", zh.CLASSIFIERS[s.NOUN_CLASSES[noun]]]
    pairs = s.translation_pairs("en", "zh", 200, 0)
    assert sum(" ge " in p["target"] or " zhi " in p["target"] for p in pairs) > 100


def test_translation_is_not_word_for_word():
    pairs = s.translation_pairs("en", "de", 300, 7)
    different_length = sum(len(p["source"].split()) != len(p["target"].split()) for p in pairs)
    assert different_length > 60
    assert all(p["lang"] == "en" for p in pairs)


def test_lexicons_are_mostly_disjoint():
    words = {lang: {w for kind in g.lexicon.values() for w in kind} for lang, g in s.GRAMMARS.items()}
    for a in words:
        for b in words:
            if a < b:
                assert len(words[a] & words[b]) < 0.1 * len(words[a]), (a, b)


def test_summarization_prefix_language_mix_and_salient_event():
    examples = s.summarization_examples(22, 3)
    for i, example in enumerate(examples):
        lang = s.SUMMARIZATION_LANGUAGES[i % 4]
        assert example["lang"] == lang
        assert example["source"].startswith(f"Summarize the following document in {s.LANGUAGE_NAMES[lang]}: ")
        sentences = len(re.findall(r"\.", example["source"]))
        assert 3 <= sentences <= 8
    # Re-derive the rule on a hand-made document: "b" is mentioned most and first is agent in event 2.
    a, b, c = Entity(1), Entity(2), Entity(3)
    events = [Event(1, a, Entity(2)), Event(1, b, Entity(3)), Event(1, c, Entity(2)), Event(1, b, Entity(1))]
    assert s.salient_event(events) is events[1]
    assert s.salient_event([Event(1, a, Entity(2)), Event(1, c, Entity(2))]) is None   # main never an agent


def test_summary_is_in_the_document_language_and_drops_adverbials():
    for example in s.summarization_examples(8, 11):
        document = example["source"].split(": ", 1)[1]
        summary_words = set(example["target"].rstrip(".").replace(",", "").split())
        assert summary_words <= set(document.replace(".", "").replace(",", "").split())


def test_lengths_spread():
    lengths = [len(p["source"].split()) for p in s.translation_pairs("en", "de", 2000, 5)]
    assert min(lengths) <= 4 and max(lengths) >= 20
    assert len(s.pretrain_text("en", 37, 0)) == 37
