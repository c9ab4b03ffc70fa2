"""Toy languages with real structure, for an offline study.

One meaning space (entities: noun, adjectives, number, definiteness, relative clause; events: verb,
agent, patient, recipient, time, place, tense, negation, "because" clause) is rendered by grammars
that differ in lexicon, word order and morphology:
- en: SVO, articles, plural -s, past -ed, do-support negation.
- de: articles, relative pronouns and adjective endings agree in gender/number/case; verb second
  in main clauses (a fronted time inverts subject and verb), verb final in relative/"weil" clauses.
- zh: no inflection, time first, classifiers (by noun class) after numerals and demonstratives,
  aspect particle for the past, relative clauses before the noun with "de".
- fr, es: gender agreement, adjectives after the noun; tr: SOV, suffixes for case, plural, negation
  and participles; hi: SOV, postpositions, agent gender on the verb; pl: case suffixes, definite
  objects fronted.
Selectional restrictions (animate agents, person recipients, one patient class per verb) and Zipf
lemma frequencies give structure to learn and rare words. Lexicons come from each language's own
syllables via seeded RNGs (never the salted hash()): every process renders the same text.

Over 400 lines, on purpose: the eight grammars render one meaning structure, and each reads best next
to the others (a change to the meaning space touches every renderer); split by language, each file
would restate the shared agreement and clause helpers.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, replace

from ftscale.data.common import LANGUAGE_NAMES

SUMMARIZATION_LANGUAGES = ("en", "de", "es", "fr")
LANGUAGES = tuple(LANGUAGE_NAMES)  # the languages with a grammar here

NOUN_CLASSES = ("person", "animal", "object", "place")  # noun % 4
PER_CLASS, N_VERBS, N_ADJECTIVES, N_TIMES = 50, 80, 50, 12
N_NOUNS = 4 * PER_CLASS
VALENCY = (2, 1, 2, 3)  # by verb % 4: transitive, intransitive, transitive, ditransitive
RELATIVE_P = (0.25, 0.1, 0.0)  # chance of a relative clause on an entity, by nesting depth
SYLLABLES = {  # (onsets, vowels, codas): each language sounds different, so lexicons do not overlap
    "en": ("b c d f g h l m n p r s t w", "a e i o u ea oo", "- - n t r s ck ll"),
    "de": ("b d f g h k l m n p r s t w z sch", "a e i o u ei au ie", "- - n t r ch st ng"),
    "zh": ("b p m f d t n l g k h j q x zh ch sh", "a o e i u ai ao ou", "- - n ng"),
    "fr": ("b d f g l m n p r s t v", "a e i o ou eu oi", "- - - r l s"),
    "es": ("b c d g l m n p r s t v ll", "a e i o u ia ue", "- - n s r l"),
    "tr": ("b c d g k l m n p r s t y z", "a e i o u oe ue", "- - k r n l m"),
    "hi": ("bh dh gh k kh m n p r s t v j", "a aa i ii u e o", "- - n m"),
    "pl": ("b d g k l m n p r s t w z sz cz", "a e i o u y", "- - k n sz"),
}
# Lexical words never spell a function word of any grammar (keeps e.g. zh "de"/"le" unambiguous),
# nor contain a few real-language obscenities the syllables can spell.
FUNCTION_WORDS = frozenset(
    """the a that to in did not do does because der die das den dem ein eine einen
    einem einer nicht weil na naxie yi yixie ge zhi jian chu men de le zai gei bu mei yinwei suoyi le la
    les un une des qui que ne pas dans parce el los una unos no en porque diye ko mein nahin kyonki ka
    vaala hua nie w ktory ktorego bo""".split()
)
BLOCKED = ("fuck", "cunt", "shit", "cock", "dick", "puta", "kurw", "sik", "nig", "fag", "rape", "porn")


# Cumulative Zipf-Mandelbrot weights: a heavy head (rank 0 ~12%), a long tail, no dominant lemma.
WEIGHTS = {
    n: list(itertools.accumulate(1.0 / (rank + 3.0) ** 1.1 for rank in range(n)))
    for n in (PER_CLASS, N_VERBS, N_ADJECTIVES, N_TIMES)
}


def _pick(rng: random.Random, n: int) -> int:
    return bisect.bisect(WEIGHTS[n], rng.random() * WEIGHTS[n][-1])


# ---------------------------------------------------------------- meanings (language-free)
@dataclass
class Entity:
    noun: int  # lemma; class = NOUN_CLASSES[noun % 4], gender = noun % 3
    plural: bool = False
    definite: bool = True
    count: int | None = None  # a numeral 2..9 on some plurals
    adjectives: tuple = ()
    relative: "Event | None" = None  # a clause about this entity; it holds a trace of the entity
    trace: bool = False  # the head's silent copy inside its own relative clause

    @property
    def noun_class(self) -> str:
        return NOUN_CLASSES[self.noun % 4]

    @property
    def gap(self) -> str:
        """The role the head plays in its relative clause: "agent" or "patient"."""
        return "agent" if self.relative.agent.trace else "patient"


@dataclass
class Event:
    verb: int  # valency VALENCY[verb % 4]; patient class (verb // 4) % 4
    agent: Entity
    patient: Entity | None = None
    recipient: Entity | None = None
    time: int | None = None
    place: Entity | None = None
    past: bool = False
    negated: bool = False
    reason: "Event | None" = None  # "..., because <event>"


def sample_entity(rng: random.Random, depth: int = 0, cls: int | None = None) -> Entity:
    cls = rng.randrange(4) if cls is None else cls
    plural = rng.random() < 0.3
    entity = Entity(
        4 * _pick(rng, PER_CLASS) + cls,
        plural,
        rng.random() < 0.6,
        rng.randint(2, 9) if plural and rng.random() < 0.35 else None,
        tuple(_pick(rng, N_ADJECTIVES) for _ in range(bisect.bisect((0.55, 0.88), rng.random()))),
    )
    if rng.random() < RELATIVE_P[min(depth, 2)]:
        # Only animate heads can be agents; the copy in the clause carries number for agreement.
        gap = "agent" if cls < 2 and rng.random() < 0.7 else "patient"
        entity.relative = sample_event(rng, depth + 1, **{gap: Entity(entity.noun, plural, trace=True)})
    return entity


def sample_event(
    rng: random.Random, depth: int = 0, agent: Entity | None = None, patient: Entity | None = None
) -> Event:
    while True:  # a given patient needs a transitive verb that takes its class
        verb = _pick(rng, N_VERBS)
        if patient is None or (VALENCY[verb % 4] > 1 and (verb // 4) % 4 == patient.noun % 4):
            break
    event = Event(
        verb,
        agent or sample_entity(rng, depth, cls=rng.randrange(2)),
        past=rng.random() < 0.5,
        negated=rng.random() < 0.15,
    )
    if VALENCY[verb % 4] > 1:
        event.patient = patient or sample_entity(rng, depth, cls=(verb // 4) % 4)
    if VALENCY[verb % 4] > 2:
        event.recipient = sample_entity(rng, depth + 1, cls=0)
    if depth == 0:
        event.time = _pick(rng, N_TIMES) if rng.random() < 0.35 else None
        # Bare intransitive clauses ("the dog sleeps.") are few enough to recur across samples.
        bare = VALENCY[verb % 4] == 1 and event.time is None
        event.place = Entity(4 * _pick(rng, PER_CLASS) + 3) if bare or rng.random() < 0.3 else None
        event.reason = sample_event(rng, 1) if rng.random() < 0.2 else None
    return event


# ---------------------------------------------------------------- lexicons
def _lexicon(lang: str) -> dict[str, list[str]]:
    onsets, vowels, codas = (part.split() for part in SYLLABLES[lang])
    codas = ["" if c == "-" else c for c in codas]
    rng = random.Random(f"ftscale-lexicon-{lang}")
    # No word may start a function word either, so inflected forms cannot spell one (de "di" + "e").
    seen = {f[:i] for f in FUNCTION_WORDS for i in range(1, len(f) + 1)}

    def word(syllables: int) -> str:
        while True:
            w = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables))
            if w not in seen and not any(b in w for b in BLOCKED):
                seen.add(w)
                return w

    def words(n: int, per_rank: int = 1) -> list[str]:
        # Frequent lemmas get short words, rare ones long (as natural languages do).
        ranks = [i // per_rank for i in range(n)]
        return [word(1 + (r > n // per_rank // 6) + (r > n // per_rank // 2)) for r in ranks]

    return {
        "noun": words(N_NOUNS, 4),
        "verb": words(N_VERBS),
        "adjective": words(N_ADJECTIVES),
        "time": words(N_TIMES),
        "number": [word(1 + (i > 3)) for i in range(8)],
    }


def _tidy(words: list[str]) -> str:
    out: list[str] = []
    for w in words:  # no doubled commas (clause ends meeting), none before the full stop
        if not (w == "," and (not out or out[-1] == ",")):
            out.append(w)
    return " ".join(out[:-1] if out and out[-1] == "," else out).replace(" ,", ",") + "."


# ---------------------------------------------------------------- grammars
class Grammar:
    """Per-language rendering; this base is English. Cases: nom, acc, dat, loc, gen; genders 0-2."""

    BECAUSE, RELATIVE = ("because",), ("that",)

    def __init__(self, code: str):
        self.code, self.lexicon = code, _lexicon(code)

    def word(self, kind: str, index: int) -> str:
        return self.lexicon[kind][index]

    def numeral(self, e: Entity) -> list[str]:
        return [self.word("number", e.count - 2)] if e.count else []

    def time(self, event: Event) -> list[str]:
        return [self.word("time", event.time)] if event.time is not None else []

    # --- noun phrases
    def noun_phrase(self, e: Entity | None, case: str, *preposition: str) -> list[str]:
        """Nothing for an absent role or a trace (the head's silent copy in its relative clause)."""
        if e is None or e.trace:
            return []
        noun = self.noun_form(self.word("noun", e.noun), e, case)
        adjectives = [self.adjective_form(self.word("adjective", a), e, case) for a in e.adjectives]
        phrase = self.determiner(e, case) + self.arrange(adjectives, noun)
        return [*preposition, *(self.attach_relative(phrase, self.relative_clause(e)) if e.relative else phrase)]

    def determiner(self, e: Entity, case: str) -> list[str]:
        return (["the"] if e.definite else ([] if e.plural or e.count else ["a"])) + self.numeral(e)

    def noun_form(self, noun: str, e: Entity, case: str) -> str:
        return noun + ("s" if e.plural else "")

    def adjective_form(self, adjective: str, e: Entity, case: str) -> str:
        return adjective

    def arrange(self, adjectives: list[str], noun: str) -> list[str]:
        return adjectives + [noun]

    def attach_relative(self, phrase: list[str], clause: list[str]) -> list[str]:
        return phrase + clause

    def relative_clause(self, e: Entity) -> list[str]:
        return [*self.RELATIVE] + self.clause(e.relative, sub=True)

    # --- clauses
    def verb_group(self, event: Event) -> list[str]:
        verb = self.word("verb", event.verb)
        if event.negated:
            return ["did" if event.past else ("do" if event.agent.plural else "does"), "not", verb]
        return [verb + ("ed" if event.past else ("" if event.agent.plural else "s"))]

    def clause(self, event: Event, sub: bool = False) -> list[str]:
        return (
            self.noun_phrase(event.agent, "nom")
            + self.verb_group(event)
            + self.noun_phrase(event.patient, "acc")
            + self.noun_phrase(event.recipient, "dat", "to")
            + self.noun_phrase(event.place, "loc", "in")
            + self.time(event)
        )

    def main(self, event: Event) -> list[str]:
        reason = [",", *self.BECAUSE] + self.clause(event.reason, sub=True) if event.reason else []
        return self.clause(event) + reason

    def sentence(self, event: Event) -> str:
        return _tidy(self.main(event))


class German(Grammar):
    ARTICLES = {  # (definite, case) -> by gender m/f/n, plural last ("": no article)
        (True, "nom"): ("der", "die", "das", "die"),
        (True, "acc"): ("den", "die", "das", "die"),
        (True, "dat"): ("dem", "der", "dem", "den"),
        (False, "nom"): ("ein", "eine", "ein", ""),
        (False, "acc"): ("einen", "eine", "ein", ""),
        (False, "dat"): ("einem", "einer", "einem", ""),
    }
    BECAUSE = ("weil",)

    @staticmethod
    def slot(e):
        return 3 if e.plural else e.noun % 3

    def determiner(self, e, case):
        article = self.ARTICLES[(e.definite, "dat" if case == "loc" else case)][self.slot(e)]
        return ([article] if article else []) + self.numeral(e)

    def noun_form(self, noun, e, case):
        if not e.plural:
            return noun
        return noun + ("en" if e.noun % 3 == 1 else "e" + ("n" if case in ("dat", "loc") else ""))

    def adjective_form(self, adjective, e, case):
        # Weak endings after der/die/das, mixed after ein, strong with no article (plurals).
        if case in ("dat", "loc") or (e.plural and e.definite) or (case == "acc" and self.slot(e) == 0):
            return adjective + "en"
        if e.plural or e.definite:
            return adjective + "e"
        return adjective + ("er", "e", "es")[e.noun % 3]

    def verb_group(self, event):
        stem = self.word("verb", event.verb)
        ending = (("te", "ten") if event.past else ("t", "en"))[event.agent.plural]
        return [stem + ("e" if stem[-1] in "td" and ending[0] == "t" else "") + ending]  # er arbeitet, arbeitete

    def relative_clause(self, e):  # pronoun: gender/number of the head, case of its role
        pronoun = self.ARTICLES[(True, "nom" if e.gap == "agent" else "acc")][self.slot(e)]
        return [",", pronoun] + self.clause(e.relative, sub=True) + [","]

    def clause(self, event, sub=False):
        subject, verb, time = self.noun_phrase(event.agent, "nom"), self.verb_group(event), self.time(event)
        middle = (
            self.noun_phrase(event.recipient, "dat")
            + self.noun_phrase(event.patient, "acc")
            + (["nicht"] if event.negated else [])
            + self.noun_phrase(event.place, "loc", "in")
        )
        if sub:  # verb final
            return subject + time + middle + verb
        if time:  # verb second: the fronted time inverts subject and verb
            return time + verb + subject + middle
        return subject + verb + middle


class Chinese(Grammar):
    CLASSIFIERS = {"person": "ge", "animal": "zhi", "object": "jian", "place": "chu"}
    RELATIVE = ()  # the clause itself, then "de", then the noun phrase

    def determiner(self, e, case):
        classifier = [self.CLASSIFIERS[e.noun_class]]
        if e.count:
            return (["na"] if e.definite else []) + self.numeral(e) + classifier
        if e.plural:
            return ["naxie"] if e.definite else ["yixie"]
        return (["na"] if e.definite else ["yi"]) + classifier

    def noun_form(self, noun, e, case):
        return noun + ("men" if e.plural and not e.count and e.noun_class == "person" else "")

    def arrange(self, adjectives, noun):
        return [w for a in adjectives for w in (a, "de")] + [noun]

    def attach_relative(self, phrase, clause):
        return clause + ["de"] + phrase

    def verb_group(self, event):
        verb = self.word("verb", event.verb)
        if event.negated:
            return ["mei" if event.past else "bu", verb]
        return [verb, "le"] if event.past else [verb]

    def clause(self, event, sub=False):
        return (
            self.time(event)
            + self.noun_phrase(event.agent, "nom")
            + self.noun_phrase(event.place, "loc", "zai")
            + self.noun_phrase(event.recipient, "dat", "gei")
            + self.verb_group(event)
            + self.noun_phrase(event.patient, "acc")
        )

    def main(self, event):  # the reason comes first: "yinwei ..., suoyi ..."
        if not event.reason:
            return self.clause(event)
        return ["yinwei"] + self.clause(event.reason, sub=True) + [",", "suoyi"] + self.clause(event)


class Romance(Grammar):
    """French and Spanish: gendered articles, adjectives after the noun, preverbal negation."""

    def __init__(self, code, articles, indefinite, endings, relative, negation, to, at, because):
        self.articles, self.indefinite, self.endings = articles, indefinite, endings
        self.relative, self.negation, self.to, self.at, self.BECAUSE = relative, negation, to, at, because
        super().__init__(code)

    def determiner(self, e, case):
        if not e.definite and e.count:
            return self.numeral(e)
        table = self.articles if e.definite else self.indefinite
        return [table[2] if e.plural else table[e.noun % 3 == 1]] + self.numeral(e)

    def adjective_form(self, adjective, e, case):
        return adjective + ("a" if e.noun % 3 == 1 else "") + ("s" if e.plural else "")

    def arrange(self, adjectives, noun):
        return [noun] + adjectives

    def verb_group(self, event):
        verb = self.word("verb", event.verb) + self.endings[event.past][event.agent.plural]
        before, after = self.negation if event.negated else ([], [])
        return before + [verb] + after

    def relative_clause(self, e):
        return [self.relative[e.gap == "patient"]] + self.clause(e.relative, sub=True)

    def clause(self, event, sub=False):
        return (
            self.time(event)
            + self.noun_phrase(event.agent, "nom")
            + self.verb_group(event)
            + self.noun_phrase(event.patient, "acc")
            + self.noun_phrase(event.recipient, "dat", self.to)
            + self.noun_phrase(event.place, "loc", self.at)
        )


class VerbFinal(Grammar):
    """Turkish and Hindi: SOV, case suffixes/postpositions; relative clauses are participles before the noun."""

    RELATIVE = ()

    def __init__(self, code, cases, plural, tenses, negation, participles, because, reason_first):
        self.cases, self.plural, self.tenses, self.negation = cases, plural, tenses, negation
        self.participles, self.BECAUSE, self.reason_first = participles, because, reason_first
        super().__init__(code)

    def determiner(self, e, case):
        return self.numeral(e)

    def noun_form(self, noun, e, case):
        marked = case != "acc" or e.definite  # only definite objects take the accusative
        return noun + (self.plural if e.plural else "") + (self.cases[case] if marked else "")

    def attach_relative(self, phrase, clause):
        return clause + phrase

    def verb_group(self, event):
        stem, ending = self.word("verb", event.verb), self.tenses[event.past]
        if self.code == "hi":  # gender and number of the agent on the verb, negation before it
            ending += "e" if event.agent.plural else ("ii" if event.agent.noun % 3 == 1 else "aa")
            return ([self.negation] if event.negated else []) + [stem + ending]
        return [stem + (self.negation if event.negated else "") + ending + ("ler" if event.agent.plural else "")]

    def clause(self, event, sub=False):
        gap = "agent" if event.agent.trace else "patient" if event.patient and event.patient.trace else None
        # In an object relative the agent is genitive ("the dog's seen cat"); the verb a participle.
        verb = [self.word("verb", event.verb) + self.participles[gap]] if gap else self.verb_group(event)
        return (
            self.time(event)
            + self.noun_phrase(event.agent, "gen" if gap == "patient" else "nom")
            + self.noun_phrase(event.place, "loc")
            + self.noun_phrase(event.recipient, "dat")
            + self.noun_phrase(event.patient, "acc")
            + verb
        )

    def main(self, event):
        if not event.reason:
            return self.clause(event)
        main, reason = self.clause(event), self.clause(event.reason, sub=True)
        return reason + [*self.BECAUSE, ","] + main if self.reason_first else main + [",", *self.BECAUSE] + reason


class Polish(Grammar):
    CASES = {"nom": "", "acc": "e", "dat": "owi", "loc": "u", "gen": "a"}
    BECAUSE = ("bo",)

    def determiner(self, e, case):
        return self.numeral(e)

    def noun_form(self, noun, e, case):
        return noun + ("y" if e.plural else "") + self.CASES[case]

    def adjective_form(self, adjective, e, case):
        return adjective + ("a" if e.noun % 3 == 1 else "y") + self.CASES[case][:1]

    def verb_group(self, event):
        verb = self.word("verb", event.verb) + ("l" if event.past else "a") + ("y" if event.agent.plural else "")
        return (["nie"] if event.negated else []) + [verb]

    def relative_clause(self, e):
        return [",", ("ktory", "ktorego")[e.gap == "patient"]] + self.clause(e.relative, sub=True) + [","]

    def clause(self, event, sub=False):
        subject, patient = self.noun_phrase(event.agent, "nom"), self.noun_phrase(event.patient, "acc")
        rest = self.noun_phrase(event.recipient, "dat") + self.noun_phrase(event.place, "loc", "w")
        if not sub and event.patient and event.patient.definite and not event.agent.definite:
            return self.time(event) + patient + self.verb_group(event) + subject + rest  # definite object first
        return self.time(event) + subject + self.verb_group(event) + patient + rest


GRAMMARS = {
    "en": Grammar("en"),
    "de": German("de"),
    "zh": Chinese("zh"),
    "fr": Romance(
        "fr",
        ("le", "la", "les"),
        ("un", "une", "des"),
        (("e", "ent"), ("ait", "aient")),
        ("qui", "que"),
        (["ne"], ["pas"]),
        "a",
        "dans",
        ("parce", "que"),
    ),
    "es": Romance(
        "es",
        ("el", "la", "los"),
        ("un", "una", "unos"),
        (("a", "an"), ("aba", "aban")),
        ("que", "que"),
        (["no"], []),
        "a",
        "en",
        ("porque",),
    ),
    "tr": VerbFinal(
        "tr",
        {"nom": "", "acc": "i", "dat": "e", "loc": "de", "gen": "in"},
        "ler",
        ("iyor", "di"),
        "me",
        {"agent": "en", "patient": "dik"},
        ("diye",),
        True,
    ),
    "hi": VerbFinal(
        "hi",
        {"nom": "", "acc": " ko", "dat": " ko", "loc": " mein", "gen": " ka"},
        "on",
        ("t", "th"),
        "nahin",
        {"agent": "ne vaala", "patient": "aa hua"},
        ("kyonki",),
        False,
    ),
    "pl": Polish("pl"),
}


# ---------------------------------------------------------------- datasets
def render(event: Event, lang: str) -> str:
    return GRAMMARS[lang].sentence(event)


def pretrain_text(lang: str, n_lines: int, seed: int) -> list[str]:
    """Monolingual text: each line a short paragraph of 1-4 sentences in `lang`."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        topic = 4 * _pick(rng, PER_CLASS) + rng.randrange(2)  # paragraphs keep coming back to one entity
        events = [
            sample_event(rng, agent=Entity(topic) if rng.random() < 0.4 else None)
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))
        ]
        lines.append(" ".join(render(e, lang) for e in events))
    return lines


def translation_pairs(source_lang: str, target_lang: str, n: int, seed: int) -> list[dict]:
    """n dicts {"source", "target", "lang"}: one sampled meaning rendered in both languages."""
    rng = random.Random(seed)
    return [
        {"source": render(e, source_lang), "target": render(e, target_lang), "lang": source_lang}
        for e in (sample_event(rng) for _ in range(n))
    ]


def salient_event(events: list[Event]) -> Event | None:
    """The summary's event: the first one whose agent is the document's most mentioned noun
    (counting each sentence's agent and patient; ties go to the noun mentioned first)."""
    mentions: dict[int, int] = {}
    for event in events:
        for entity in (event.agent, event.patient):
            if entity is not None:
                mentions[entity.noun] = mentions.get(entity.noun, 0) + 1
    main = max(mentions, key=mentions.get)  # dicts keep first-mention order: ties go to the first
    return next((e for e in events if e.agent.noun == main), None)


def summarization_documents(n: int, seed: int, languages=SUMMARIZATION_LANGUAGES) -> list[tuple]:
    """The meanings behind summarization_examples: (lang, events, summary event) per example."""
    rng = random.Random(seed)
    documents = []
    while len(documents) < n:
        lang = languages[len(documents) % len(languages)]
        # A hero and two others (animate). The hero first acts in sentence k, drawn uniformly, so the
        # summary is not simply the first sentence or the last.
        hero, *others = (4 * _pick(rng, PER_CLASS) + rng.randrange(2) for _ in range(3))
        length = rng.randint(
            3, 7
        )  # 3-7 sentences: es/fr, unseen by the En-De tokenizer, fit the toy max_source_tokens 192
        k, events = rng.randrange(length), []
        for i in range(length):
            agent = hero if i == k else rng.choice(others if i < k else (hero, *others))
            event = sample_event(rng, 1, agent=Entity(agent))  # depth 1: short sentences
            event.time = _pick(rng, N_TIMES) if rng.random() < 0.4 else None
            patients = [c for c in (hero, hero, hero, *others) if c != agent]  # the hero, most often
            if event.patient and patients and rng.random() < 0.8:
                event.patient = Entity(rng.choice(patients))
            events.append(event)
        summary = salient_event(events)
        if summary is not None and summary.agent.noun == hero:  # else draw another document
            documents.append((lang, events, replace(summary, time=None)))
    return documents


def summarization_examples(n: int, seed: int, languages=SUMMARIZATION_LANGUAGES) -> list[dict]:
    """Documents of 3-7 sentences in one language, summarised by their salient event (see
    salient_event), rendered without its time. Example i is in languages[i % len(languages)],
    so any prefix keeps the language mix. The instruction before each document is the data
    source's (ftscale.data.common.finish_records), as for every source."""
    return [
        {"source": " ".join(render(e, lang) for e in events), "target": render(summary, lang), "lang": lang}
        for lang, events, summary in summarization_documents(n, seed, languages)
    ]
