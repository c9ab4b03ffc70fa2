"""Toy languages with real structure, for an offline study.

One meaning space — entities (nouns with adjectives, number, definiteness, an optional relative
clause) taking part in events (a verb with agent, patient, recipient, time, place, tense and
negation) — is rendered by per-language grammars that differ in lexicon, word order and morphology:

- en: SVO, articles, plural -s, past -ed, do-support negation.
- de: three genders, articles and adjective endings that agree in case (nom/acc/dat), verb second
  in main clauses (a fronted time inverts subject and verb), verb final in relative clauses.
- zh: no inflection, classifiers chosen by noun class, time and place before the verb, an aspect
  particle for the past, relative clauses before the noun with a linking particle.
- fr, es: gender agreement, adjectives after the noun; tr, hi: SOV with case suffixes or
  postpositions (hi marks gender on the verb); pl: case suffixes, object fronted when definite.

Lemmas are drawn Zipf-like, so rare words exist; lexicons are generated per language from its own
syllables with seeded RNGs (never Python's salted hash), so every process renders the same text.
"""
from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass, field

FAMILIES = {"ende": ("en", "de"), "enzh": ("en", "zh")}
ZERO_SHOT_SOURCES = {"ende": ("fr", "zh", "hi", "tr", "pl"), "enzh": ("fr", "de", "hi", "tr", "pl")}
SUMMARIZATION_LANGUAGES = ("en", "de", "es", "fr")
LANGUAGE_NAMES = {"en": "English", "de": "German", "zh": "Chinese", "fr": "French", "es": "Spanish",
                  "tr": "Turkish", "hi": "Hindi", "pl": "Polish"}
LANGUAGES = tuple(LANGUAGE_NAMES)

NOUN_CLASSES = ("person", "animal", "object", "place")
N_NOUNS, N_VERBS, N_ADJECTIVES, N_TIMES = 160, 60, 40, 8
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


def split_seed(base_seed: int, name: str) -> int:
    """A stable seed for one dataset/split, derived from the study's base seed."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}/{name}".encode()).digest()[:8], "little")


def _zipf_weights(n: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(n)))


WEIGHTS = {n: _zipf_weights(n) for n in (N_NOUNS, N_VERBS, N_ADJECTIVES, N_TIMES)}


def _pick(rng: random.Random, n: int) -> int:
    return rng.choices(range(n), cum_weights=WEIGHTS[n])[0]


# ---------------------------------------------------------------- meanings (language-free)
@dataclass
class Entity:
    noun: int                 # lemma index; class = noun % 4, gender = noun % 3
    plural: bool = False
    definite: bool = True
    adjectives: tuple = ()
    relative: "Event | None" = None   # "the dog that sees a cat": this entity is the agent

    @property
    def noun_class(self) -> str:
        return NOUN_CLASSES[self.noun % 4]


@dataclass
class Event:
    verb: int                 # valency = 1 + verb % 3 (intransitive, transitive, ditransitive)
    agent: Entity
    patient: Entity | None = None
    recipient: Entity | None = None
    time: int | None = None
    place: Entity | None = None
    past: bool = False
    negated: bool = False


def sample_entity(rng: random.Random, depth: int = 0, noun: int | None = None) -> Entity:
    entity = Entity(noun=_pick(rng, N_NOUNS) if noun is None else noun, plural=rng.random() < 0.3,
                    definite=rng.random() < 0.6,
                    adjectives=tuple(_pick(rng, N_ADJECTIVES) for _ in range(rng.choices((0, 1, 2), (5, 3, 1))[0])))
    if depth == 0 and rng.random() < 0.2:   # one level of relative clause: long, nested sentences
        entity.relative = sample_event(rng, depth=1, agent=Entity(entity.noun))
        entity.relative.time = entity.relative.place = entity.relative.recipient = None
    return entity


def sample_event(rng: random.Random, depth: int = 0, agent: Entity | None = None,
                 patient_noun: int | None = None) -> Event:
    verb = _pick(rng, N_VERBS)
    valency = 1 + verb % 3
    event = Event(verb=verb, agent=agent or sample_entity(rng, depth), past=rng.random() < 0.5,
                  negated=rng.random() < 0.15)
    if valency >= 2:
        event.patient = sample_entity(rng, depth, noun=patient_noun)
    if valency == 3:
        event.recipient = sample_entity(rng, depth=1)
    if depth == 0:
        event.time = _pick(rng, N_TIMES) if rng.random() < 0.35 else None
        event.place = Entity(noun=4 * rng.randrange(N_NOUNS // 4) + 3, definite=True) if rng.random() < 0.3 else None
    return event


# ---------------------------------------------------------------- lexicons
def _lexicon(lang: str) -> dict[str, list[str]]:
    onsets, vowels, codas = (part.split() for part in SYLLABLES[lang])
    codas = ["" if c == "-" else c for c in codas]
    rng = random.Random(f"ftscale-lexicon-{lang}")
    seen: set[str] = set()

    def word(syllables: int) -> str:
        while True:
            w = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables))
            if w not in seen:
                seen.add(w)
                return w

    sizes = {"noun": N_NOUNS, "verb": N_VERBS, "adjective": N_ADJECTIVES, "time": N_TIMES}
    # Frequent lemmas get short words, rare ones long (as natural languages do).
    return {kind: [word(1 + (i > n // 6) + (i > n // 2)) for i in range(n)] for kind, n in sizes.items()}


# ---------------------------------------------------------------- grammars
@dataclass
class Grammar:
    """Per-language rendering. Cases: nom, acc, dat, loc. Genders: 0, 1, 2 (noun % 3)."""
    code: str
    lexicon: dict = field(init=False)

    def __post_init__(self):
        self.lexicon = _lexicon(self.code)

    # --- noun phrases
    def noun_phrase(self, e: Entity, case: str) -> list[str]:
        noun = self.noun_form(self.lexicon["noun"][e.noun], e, case)
        adjectives = [self.adjective_form(self.lexicon["adjective"][a], e, case) for a in e.adjectives]
        phrase = self.determiner(e, case) + self.arrange(adjectives, noun)
        if e.relative:
            phrase = self.attach_relative(phrase, self.relative_clause(e), e)
        return phrase

    def determiner(self, e: Entity, case: str) -> list[str]:
        return []

    def noun_form(self, noun: str, e: Entity, case: str) -> str:
        return noun + ("s" if e.plural else "")

    def adjective_form(self, adjective: str, e: Entity, case: str) -> str:
        return adjective

    def arrange(self, adjectives: list[str], noun: str) -> list[str]:
        return adjectives + [noun]

    def attach_relative(self, phrase: list[str], clause: list[str], e: Entity) -> list[str]:
        return phrase + clause

    def relative_clause(self, e: Entity) -> list[str]:
        r = e.relative
        return ["that"] + self.verb_group(r, subordinate=True) + self.objects(r)

    # --- clauses
    def verb_form(self, event: Event) -> str:
        return self.lexicon["verb"][event.verb] + ("ed" if event.past else ("" if event.agent.plural else "s"))

    def verb_group(self, event: Event, subordinate: bool = False) -> list[str]:
        if event.negated:
            return ["did" if event.past else ("do" if event.agent.plural else "does"), "not",
                    self.lexicon["verb"][event.verb]]
        return [self.verb_form(event)]

    def objects(self, event: Event) -> list[str]:
        out = self.noun_phrase(event.patient, "acc") if event.patient else []
        return out + (["to"] + self.noun_phrase(event.recipient, "dat") if event.recipient else [])

    def adverbials(self, event: Event) -> tuple[list[str], list[str]]:
        place = ["in"] + self.noun_phrase(event.place, "loc") if event.place else []
        time = [self.lexicon["time"][event.time]] if event.time is not None else []
        return place, time

    def clause(self, event: Event) -> list[str]:
        place, time = self.adverbials(event)
        return self.noun_phrase(event.agent, "nom") + self.verb_group(event) + self.objects(event) + place + time

    def sentence(self, event: Event) -> str:
        text = " ".join(self.clause(event)).replace(" ,", ",")
        return text.rstrip(",") + "."


class English(Grammar):
    def determiner(self, e, case):
        return ["the"] if e.definite else ([] if e.plural else ["a"])


class German(Grammar):
    ARTICLES = {  # (definite, case) -> by gender m/f/n, plural last
        (True, "nom"): ("der", "die", "das", "die"), (True, "acc"): ("den", "die", "das", "die"),
        (True, "dat"): ("dem", "der", "dem", "den"), (False, "nom"): ("ein", "eine", "ein", "einige"),
        (False, "acc"): ("einen", "eine", "ein", "einige"), (False, "dat"): ("einem", "einer", "einem", "einigen")}
    RELATIVE = ("der", "die", "das", "die")
    NEGATION = "nicht"

    def slot(self, e):
        return 3 if e.plural else e.noun % 3

    def determiner(self, e, case):
        return [self.ARTICLES[(e.definite, "dat" if case == "loc" else case)][self.slot(e)]]

    def noun_form(self, noun, e, case):
        return noun + (("en" if e.noun % 3 == 1 else "e") + ("n" if case in ("dat", "loc") else "") if e.plural else "")

    def adjective_form(self, adjective, e, case):
        weak = e.definite or e.plural   # after der/die/das: -e or -en; after ein: strong endings
        if case in ("dat", "loc") or e.plural or (case == "acc" and e.noun % 3 == 0):
            return adjective + "en"
        if weak:
            return adjective + "e"
        return adjective + ("er", "e", "es")[e.noun % 3]

    def verb_form(self, event):
        stem = self.lexicon["verb"][event.verb]
        return stem + ("te" if event.past else "") + ("n" if event.agent.plural else "t")

    def verb_group(self, event, subordinate=False):
        return [self.verb_form(event)]

    def objects(self, event):
        # Dative recipient before the accusative object, as German orders them.
        out = self.noun_phrase(event.recipient, "dat") if event.recipient else []
        return out + (self.noun_phrase(event.patient, "acc") if event.patient else [])

    def relative_clause(self, e):
        r = e.relative   # verb final, relative pronoun agrees with the head noun
        return [",", self.RELATIVE[self.slot(e)]] + self.objects(r) + ([self.NEGATION] if r.negated else []) \
            + [self.verb_form(r), ","]

    def clause(self, event):
        place = ["in"] + self.noun_phrase(event.place, "loc") if event.place else []
        negation = [self.NEGATION] if event.negated else []
        subject = self.noun_phrase(event.agent, "nom")
        if event.time is not None:   # verb second: a fronted time inverts subject and verb
            return [self.lexicon["time"][event.time], self.verb_form(event)] + subject + self.objects(event) \
                + negation + place
        return subject + [self.verb_form(event)] + self.objects(event) + negation + place


class Chinese(Grammar):
    CLASSIFIERS = {"person": "ge", "animal": "zhi", "object": "jian", "place": "chu"}

    def determiner(self, e, case):
        if e.definite:
            return ["na", self.CLASSIFIERS[e.noun_class]] if not e.plural else ["naxie"]
        return ["yi", self.CLASSIFIERS[e.noun_class]] if not e.plural else ["xie"]

    def noun_form(self, noun, e, case):
        return noun + ("men" if e.plural and e.noun_class == "person" else "")

    def arrange(self, adjectives, noun):
        return [w for a in adjectives for w in (a, "de")] + [noun]

    def attach_relative(self, phrase, clause, e):
        return clause + ["de"] + phrase   # relative clause before the noun

    def relative_clause(self, e):
        return self.verb_group(e.relative) + self.objects(e.relative)

    def verb_group(self, event, subordinate=False):
        verb = self.lexicon["verb"][event.verb]
        if event.negated:
            return ["mei" if event.past else "bu", verb]
        return [verb, "le"] if event.past else [verb]

    def objects(self, event):
        return self.noun_phrase(event.patient, "acc") if event.patient else []

    def clause(self, event):
        time = [self.lexicon["time"][event.time]] if event.time is not None else []
        place = ["zai"] + self.noun_phrase(event.place, "loc") if event.place else []
        recipient = ["gei"] + self.noun_phrase(event.recipient, "dat") if event.recipient else []
        return time + self.noun_phrase(event.agent, "nom") + place + recipient + self.verb_group(event) \
            + self.objects(event)


class Romance(Grammar):
    """French and Spanish: gendered articles, adjectives after the noun, preverbal negation."""
    def __init__(self, code, articles, indefinite, plural_verb, relative, negation, to, at):
        self.articles, self.indefinite, self.plural_verb = articles, indefinite, plural_verb
        self.relative, self.negation, self.to, self.at = relative, negation, to, at
        super().__init__(code)

    def feminine(self, e):
        return e.noun % 3 == 1

    def determiner(self, e, case):
        table = self.articles if e.definite else self.indefinite
        return [table[2] if e.plural else table[self.feminine(e)]]

    def adjective_form(self, adjective, e, case):
        return adjective + ("a" if self.feminine(e) else "") + ("s" if e.plural else "")

    def arrange(self, adjectives, noun):
        return [noun] + adjectives

    def verb_form(self, event):
        stem = self.lexicon["verb"][event.verb]
        return stem + ("ait" if event.past and self.code == "fr" else "aba" if event.past else "e") \
            + (self.plural_verb if event.agent.plural else "")

    def verb_group(self, event, subordinate=False):
        negation = self.negation if event.negated else ([], [])
        return negation[0] + [self.verb_form(event)] + negation[1]

    def objects(self, event):
        out = self.noun_phrase(event.patient, "acc") if event.patient else []
        return out + ([self.to] + self.noun_phrase(event.recipient, "dat") if event.recipient else [])

    def relative_clause(self, e):
        return [self.relative] + self.verb_group(e.relative) + self.objects(e.relative)

    def adverbials(self, event):
        place = [self.at] + self.noun_phrase(event.place, "loc") if event.place else []
        return place, ([self.lexicon["time"][event.time]] if event.time is not None else [])

    def clause(self, event):
        place, time = self.adverbials(event)
        return time + self.noun_phrase(event.agent, "nom") + self.verb_group(event) + self.objects(event) + place


class Verbfinal(Grammar):
    """Turkish and Hindi: SOV; relative clauses are participles before the noun."""
    def __init__(self, code, cases, plural, past, present, negation, participle):
        self.cases, self.plural, self.past, self.present = cases, plural, past, present
        self.negation, self.participle = negation, participle
        super().__init__(code)

    def noun_form(self, noun, e, case):
        marked = case != "acc" or e.definite     # only definite objects take the accusative
        return noun + (self.plural if e.plural else "") + (self.cases[case] if marked else "")

    def attach_relative(self, phrase, clause, e):
        return clause + phrase

    def relative_clause(self, e):
        return self.objects(e.relative) + [self.lexicon["verb"][e.relative.verb] + self.participle]

    def verb_form(self, event):
        stem = self.lexicon["verb"][event.verb]
        ending = self.past if event.past else self.present
        if self.code == "hi":    # gender and number of the agent on the verb
            ending += "e" if event.agent.plural else ("ii" if event.agent.noun % 3 == 1 else "aa")
        elif event.agent.plural:
            ending += "ler"
        return ([self.negation] if event.negated and self.code == "hi" else []) \
            + [stem + (self.negation if event.negated and self.code == "tr" else "") + ending]

    def objects(self, event):
        out = self.noun_phrase(event.recipient, "dat") if event.recipient else []
        return out + (self.noun_phrase(event.patient, "acc") if event.patient else [])

    def clause(self, event):
        time = [self.lexicon["time"][event.time]] if event.time is not None else []
        place = self.noun_phrase(event.place, "loc") if event.place else []
        return time + self.noun_phrase(event.agent, "nom") + place + self.objects(event) + self.verb_form(event)


class Polish(Grammar):
    CASES = {"nom": "", "acc": "e", "dat": "owi", "loc": "u"}

    def noun_form(self, noun, e, case):
        return noun + ("y" if e.plural else "") + self.CASES[case]

    def adjective_form(self, adjective, e, case):
        return adjective + ("a" if e.noun % 3 == 1 else "y") + self.CASES[case][:1]

    def verb_form(self, event):
        stem = self.lexicon["verb"][event.verb]
        return stem + ("l" if event.past else "a") + ("y" if event.agent.plural else "")

    def verb_group(self, event, subordinate=False):
        return (["nie"] if event.negated else []) + [self.verb_form(event)]

    def relative_clause(self, e):
        return [",", "ktory"] + self.verb_group(e.relative) + self.objects(e.relative) + [","]

    def objects(self, event):
        out = self.noun_phrase(event.patient, "acc") if event.patient else []
        return out + (self.noun_phrase(event.recipient, "dat") if event.recipient else [])

    def clause(self, event):
        place = ["w"] + self.noun_phrase(event.place, "loc") if event.place else []
        time = [self.lexicon["time"][event.time]] if event.time is not None else []
        subject = self.noun_phrase(event.agent, "nom")
        if event.patient and event.patient.definite and not event.agent.definite:   # object fronting
            return time + self.noun_phrase(event.patient, "acc") + self.verb_group(event) + subject + place
        return time + subject + self.verb_group(event) + self.objects(event) + place


GRAMMARS = {
    "en": English("en"), "de": German("de"), "zh": Chinese("zh"),
    "fr": Romance("fr", ("le", "la", "les"), ("un", "une", "des"), "nt", "qui", (["ne"], ["pas"]), "a", "dans"),
    "es": Romance("es", ("el", "la", "los"), ("un", "una", "unos"), "n", "que", (["no"], []), "a", "en"),
    "tr": Verbfinal("tr", {"nom": "", "acc": "i", "dat": "e", "loc": "de"}, "ler", "di", "iyor", "me", "en"),
    "hi": Verbfinal("hi", {"nom": "", "acc": " ko", "dat": " ko", "loc": " mein"}, "on", "th", "t", "nahin", "ne vaala"),
    "pl": Polish("pl"),
}


# ---------------------------------------------------------------- datasets
def render(event: Event, lang: str) -> str:
    return GRAMMARS[lang].sentence(event)


def pretrain_text(lang: str, n_lines: int, seed: int) -> list[str]:
    """Monolingual text: each line a short paragraph of 1-4 sentences in `lang`."""
    rng = random.Random(seed)
    return [" ".join(render(sample_event(rng), lang) for _ in range(rng.choice((1, 1, 2, 2, 3, 4))))
            for _ in range(n_lines)]


def translation_pairs(source_lang: str, target_lang: str, n: int, seed: int) -> list[dict]:
    """n dicts {"source", "target", "lang"}: one sampled meaning rendered in both languages."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        event = sample_event(rng)
        pairs.append({"source": render(event, source_lang), "target": render(event, target_lang),
                      "lang": source_lang})
    return pairs


def salient_event(events: list[Event]) -> Event | None:
    """The summary's event: the first one whose agent is the most mentioned entity of the document
    (mentions as agent or patient; ties go to the entity mentioned first)."""
    mentions: dict[int, int] = {}
    for event in events:
        for entity in (event.agent, event.patient):
            if entity is not None:
                mentions[entity.noun] = mentions.get(entity.noun, 0) + 1
    main = max(mentions, key=mentions.get)     # dicts keep first-mention order: ties go to the first
    return next((e for e in events if e.agent.noun == main), None)


def summarization_examples(n: int, seed: int, languages=SUMMARIZATION_LANGUAGES) -> list[dict]:
    """Documents of 3-8 sentences in one language, summarised by their salient event, rendered
    without its time and place. Example i is in languages[i % len(languages)], so any prefix keeps
    the language mix."""
    rng = random.Random(seed)
    examples = []
    while len(examples) < n:
        lang = languages[len(examples) % len(languages)]
        cast = [_pick(rng, N_NOUNS) for _ in range(3)]
        events = [sample_event(rng, agent=Entity(rng.choice(cast), definite=True), patient_noun=rng.choice(cast))
                  for _ in range(rng.randint(3, 8))]
        summary = salient_event(events)
        if summary is None:         # the main entity is never an agent: no summary sentence
            continue
        short = Event(summary.verb, summary.agent, summary.patient, summary.recipient, past=summary.past,
                      negated=summary.negated)
        document = " ".join(render(e, lang) for e in events)
        examples.append({"source": f"Summarize the following document in {LANGUAGE_NAMES[lang]}: {document}",
                         "target": render(short, lang), "lang": lang})
    return examples
