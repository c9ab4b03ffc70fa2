"""The toy-language generator: determinism, and the structure that makes translation non-trivial."""

import collections
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ftscale.data import synthetic as s
from ftscale.data.common import split_seed
from ftscale.data.synthetic import Entity, Event

EN, DE, ZH = s.GRAMMARS["en"], s.GRAMMARS["de"], s.GRAMMARS["zh"]
# Noun indices: class = noun % 4 (person, animal, object, place), gender = noun % 3 (m, f, n).
MAN, DOG, CAT = 0, 9, 1  # person/masculine, animal/masculine, animal/feminine
SEE = 0  # verb 0: transitive, takes persons


def events(n, seed=0):
    rng = random.Random(seed)
    return [s.sample_event(rng) for _ in range(n)]


def test_same_arguments_same_output_and_seeds_differ():
    assert s.pretrain_text("de", 50, 1) == s.pretrain_text("de", 50, 1)
    assert s.pretrain_text("de", 50, 1) != s.pretrain_text("de", 50, 2)
    assert s.translation_pairs("en", "zh", 20, 3) == s.translation_pairs("en", "zh", 20, 3)
    assert s.translation_pairs("en", "zh", 20, 3) != s.translation_pairs("en", "zh", 20, 4)
    assert s.summarization_examples(8, 4) == s.summarization_examples(8, 4)
    assert s.summarization_examples(8, 4) != s.summarization_examples(8, 5)
    assert split_seed(0, "task/train") == split_seed(0, "task/train") != split_seed(0, "task/test")
    assert split_seed(0, "task/train") != split_seed(1, "task/train")


def test_output_is_identical_in_another_process_with_another_hash_seed():
    code = (
        "from ftscale.data import synthetic as s; from ftscale.data.common import split_seed; "
        "print(s.translation_pairs('fr', 'de', 30, 9), s.summarization_examples(5, 2), "
        "s.pretrain_text('hi', 5, 1), split_seed(3, 'x'))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(h), "PYTHONPATH": str(Path(s.__file__).parents[2])},
        ).stdout
        for h in (1, 2)
    }  # this checkout's ftscale, whichever the interpreter has installed
    assert len(runs) == 1
    assert runs.pop().strip() == str(s.translation_pairs("fr", "de", 30, 9)) + " " + " ".join(
        map(str, (s.summarization_examples(5, 2), s.pretrain_text("hi", 5, 1), split_seed(3, "x")))
    )


def test_samples_from_different_seeds_rarely_share_a_meaning():
    train = {repr(e) for e in events(20000, split_seed(0, "train"))}  # a meaning's repr: ints, bools, tuples
    test = [repr(e) for e in events(1000, split_seed(0, "test"))]
    assert sum(k in train for k in test) <= 5  # 3 here; 13 if bare "the dog sleeps." were allowed


def test_german_articles_and_adjective_endings_agree_in_gender_number_and_case():
    expected = {MAN: ("der", "den", "dem"), CAT: ("die", "die", "der"), 2: ("das", "das", "dem")}
    for noun, articles in expected.items():
        assert [DE.noun_phrase(Entity(noun), case)[0] for case in ("nom", "acc", "dat")] == list(articles)
    plural = Entity(DOG, plural=True)
    assert [DE.noun_phrase(plural, case)[0] for case in ("nom", "acc", "dat")] == ["die", "die", "den"]
    assert DE.noun_phrase(plural, "dat")[-1].endswith("en")  # dative plural -n
    weak = Entity(MAN, adjectives=(0,))
    assert DE.noun_phrase(weak, "nom")[1].endswith("e") and DE.noun_phrase(weak, "acc")[1].endswith("en")
    mixed = [DE.noun_phrase(Entity(noun, definite=False, adjectives=(0,)), "nom")[:2] for noun in (MAN, CAT, 2)]
    assert [article for article, _ in mixed] == ["ein", "eine", "ein"]
    assert [adjective for _, adjective in mixed] == [DE.word("adjective", 0) + end for end in ("er", "e", "es")]
    # ...and the same agreement in rendered sentences: a masculine patient takes "den".
    sentence = DE.sentence(Event(SEE, agent=Entity(CAT), patient=Entity(MAN)))
    assert sentence.split()[:1] == ["die"] and sentence.split()[3] == "den"


def test_german_verb_second_in_main_clauses_and_verb_final_in_subordinate_ones():
    seeing = Event(SEE, agent=Entity(DOG), patient=Entity(MAN))
    verb = DE.verb_group(seeing)[0]
    assert DE.clause(seeing).index(verb) == 2  # der hund VERB den mann
    fronted = DE.clause(replace(seeing, time=0))
    assert fronted[:2] == [DE.word("time", 0), verb]  # time VERB subject: inversion
    assert DE.clause(seeing, sub=True)[-1] == verb  # weil der hund den mann VERB
    head = Entity(DOG, relative=Event(SEE, agent=Entity(DOG, trace=True), patient=Entity(MAN)))
    assert DE.relative_clause(head)[:2] == [",", "der"] and DE.relative_clause(head)[-2] == verb
    object_relative = Entity(MAN, relative=Event(SEE, agent=Entity(CAT), patient=Entity(MAN, trace=True)))
    assert DE.relative_clause(object_relative)[1] == "den"  # relative pronoun in the accusative
    # In sampled data every "weil" clause ends with its verb.
    for e in events(400):
        if e.reason:
            assert DE.sentence(e).rstrip(".").split()[-1] == DE.verb_group(e.reason)[0]


def test_english_and_german_order_a_because_clause_differently():
    event = Event(4, agent=Entity(MAN), reason=Event(SEE, agent=Entity(DOG), patient=Entity(CAT)))
    en, de = EN.sentence(event).rstrip(".").split(), DE.sentence(event).rstrip(".").split()
    assert en[en.index("because") + 3] == EN.verb_group(event.reason)[0]  # because the dog VERBs the cat
    assert de[-1] == DE.verb_group(event.reason)[0]  # weil der hund die katze VERB


def test_relative_clauses_agree_with_a_plural_head():
    head = Entity(
        DOG, plural=True, relative=Event(SEE, agent=Entity(DOG, plural=True, trace=True), patient=Entity(MAN))
    )
    assert EN.relative_clause(head)[1] == EN.word("verb", SEE)  # "dogs that see", no -s
    assert DE.relative_clause(head)[1] == "die" and DE.relative_clause(head)[-2].endswith("en")


def test_sampled_relative_clauses_hold_a_trace_of_their_head():
    def entities(event):
        for role in (event.agent, event.patient, event.recipient):
            if role is not None:
                yield role
                if role.relative:
                    yield from entities(role.relative)
        if event.reason:
            yield from entities(event.reason)

    heads = [e for event in events(1000) for e in entities(event) if e.relative]
    assert len(heads) > 100 and {head.gap for head in heads} == {"agent", "patient"}
    for head in heads:
        trace = getattr(head.relative, head.gap)
        assert trace.trace and (trace.noun, trace.plural) == (head.noun, head.plural)
        assert head.gap == "patient" or head.noun_class in ("person", "animal")  # agents are animate


def test_chinese_classifiers_by_noun_class_after_numerals_and_demonstratives():
    for noun in range(4):
        assert ZH.noun_phrase(Entity(noun), "nom")[:2] == ["na", ZH.CLASSIFIERS[s.NOUN_CLASSES[noun]]]
    three = ZH.noun_phrase(Entity(DOG, plural=True, definite=False, count=3), "nom")
    assert three == [ZH.word("number", 1), "zhi", ZH.word("noun", DOG)]
    targets = [p["target"] for p in s.translation_pairs("en", "zh", 300, 0)]
    assert sum(bool(re.search(r"\b(ge|zhi|jian|chu)\b", t)) for t in targets) > 200
    relative = Entity(DOG, relative=Event(SEE, agent=Entity(DOG, trace=True), patient=Entity(MAN)))
    assert ZH.noun_phrase(relative, "nom")[-4:] == ["de", "na", "zhi", ZH.word("noun", DOG)]  # clause first


def test_translation_is_not_word_for_word():
    pairs = s.translation_pairs("en", "de", 500, 7)
    assert sum(len(p["source"].split()) != len(p["target"].split()) for p in pairs) > 150
    assert all(p["lang"] == "en" for p in pairs)
    moved = 0  # the main verb's relative position differs (V2 inversion, verb-final clauses...)
    for e in events(500, 7):
        en, de = EN.sentence(e).split(), DE.sentence(e).split()
        en_verb, de_verb = EN.verb_group(e)[-1], DE.verb_group(e)[0]
        if en_verb in en and de_verb in de:
            moved += abs(en.index(en_verb) / len(en) - de.index(de_verb) / len(de)) > 0.1
    assert moved > 100
    zh_pairs = s.translation_pairs("en", "zh", 200, 7)
    assert sum(len(p["source"].split()) != len(p["target"].split()) for p in zh_pairs) > 100


def test_every_language_renders_every_meaning_in_plain_ascii():
    sample = events(300, 3)
    for lang in s.LANGUAGES:
        for e in sample:
            assert re.fullmatch(r"[a-z][a-z ,]*\.", s.render(e, lang)), (lang, s.render(e, lang))
    assert len({s.render(sample[0], lang) for lang in s.LANGUAGES}) == len(s.LANGUAGES)


def test_lexicons_are_pairwise_mostly_disjoint_and_cannot_spell_function_words():
    words = {lang: {w for kind in g.lexicon.values() for w in kind} for lang, g in s.GRAMMARS.items()}
    for lang, lexicon in words.items():
        assert len(lexicon) == s.N_NOUNS + s.N_VERBS + s.N_ADJECTIVES + s.N_TIMES + 8  # no homonyms
        # Not even a prefix of one, so no inflected form spells one (de noun "di" + plural "e" = "die").
        assert not [w for w in lexicon for f in s.FUNCTION_WORDS if f.startswith(w)], lang
    for a in words:
        for b in words:
            if a < b:
                assert len(words[a] & words[b]) < 0.05 * len(words[a]), (a, b)


def test_lemma_frequencies_have_a_long_tail():
    nouns = collections.Counter(e.agent.noun for e in events(5000, 1))
    (top,) = nouns.most_common(1)
    assert top[1] > 20 * sorted(nouns.values())[len(nouns) // 10] and len(nouns) > 60


def test_lengths_spread_and_pretrain_lines():
    lengths = [len(s.render(e, "en").split()) for e in events(3000, 5)]
    assert min(lengths) <= 5 and max(lengths) >= 35
    assert 0.05 < sum(n >= 20 for n in lengths) / len(lengths) < 0.5
    lines = s.pretrain_text("en", 37, 0)
    assert len(lines) == 37 and all(1 <= line.count(".") <= 4 for line in lines)
    assert len(s.pretrain_text("zh", 0, 0)) == 0


def test_summarization_language_mix_and_document_size():
    for n in (1, 5, 7, 22):
        examples = s.summarization_examples(n, 3)
        counts = collections.Counter(e["lang"] for e in examples)
        assert len(examples) == n and max(counts.values()) - min(counts.values(), default=0) <= 1
    for i, example in enumerate(s.summarization_examples(22, 3)):
        lang = s.SUMMARIZATION_LANGUAGES[i % 4]
        assert example["lang"] == lang
        document = example["source"]  # the instruction before it is the data source's (test_sources)
        assert 3 <= document.count(".") <= 8
        # The summary is in the document's language: its words all occur in the document.
        assert set(re.findall(r"[a-z]+", example["target"])) <= set(re.findall(r"[a-z]+", document))
    mixed = s.summarization_examples(6, 1, languages=("de", "fr"))
    assert [e["lang"] for e in mixed] == ["de", "fr"] * 3
    assert s.summarization_examples(5, 3) == s.summarization_examples(9, 3)[:5]


def test_summary_is_the_salient_event_rederived_from_the_meanings():
    documents = s.summarization_documents(40, 6)
    for (lang, events_, summary), example in zip(documents, s.summarization_examples(40, 6)):
        counts = collections.Counter()
        first_seen = {}
        for i, e in enumerate(events_):
            for entity in (e.agent, e.patient):
                if entity is not None:
                    counts[entity.noun] += 1
                    first_seen.setdefault(entity.noun, i)
        main = min(counts, key=lambda noun: (-counts[noun], first_seen[noun]))
        expected = next(e for e in events_ if e.agent.noun == main)
        assert summary == replace(expected, time=None)
        assert example["target"] == s.render(summary, lang)
        assert example["source"] == " ".join(s.render(e, lang) for e in events_)
    # Reading the whole document is needed: the summary is not mostly the first or last sentence.
    positions = [
        events_.index(next(e for e in events_ if e.agent.noun == summary.agent.noun)) / len(events_)
        for _, events_, summary in s.summarization_documents(1000, 1)
    ]
    assert sum(p == 0 for p in positions) < 0.45 * len(positions) and sum(p >= 0.5 for p in positions) > 150
    # Ties go to the noun mentioned first; a main noun that is never an agent gives no summary.
    a, c = Entity(1), Entity(3)
    tied = [Event(SEE, c, Entity(1)), Event(SEE, Entity(1), Entity(3)), Event(SEE, Entity(2), Entity(2))]
    assert s.salient_event(tied) is tied[0]  # nouns 3 and 1 both twice; 3 came first
    assert s.salient_event([Event(SEE, a, Entity(2)), Event(SEE, c, Entity(2))]) is None
