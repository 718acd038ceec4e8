"""Triage's decision: category, priority, agency, SLA, confidence, key questions, explanation.

Three readers of one report, each kept explainable:

- the life-threat detector (`threats.py`): chief complaints in Indonesian, Javanese ngoko and
  krama, English and SMS slang, with what discounts them;
- the category words (`categories.py`, categories.toml);
- the trained model (`model.py`): letters and words towards categories and priorities.

The category is the one with the best model log-probability plus the category words' points
and the detected complaints' points, each weighed (`Policy`). Priority is built for recall,
since under-triage is the error that kills: a certain threat is P1; a possible one, or a
model P1 probability above `p1_possible`, is P1 with the key questions, for a call-taker
to confirm or lower (a sentence the model reads as P1 on its own counts too: words around a
threat dilute it); otherwise the model's likeliest of P2-P4 that fits the category.
A caller owning up to a joke makes a prank unless a threat is certain; a number flagged
for pranks is lowered to P3 unless a life may be at risk. Below `review_threshold`, or when
no rule recognised anything (the model alone decided), a human decides the category first,
unless a life may be at risk (units go on the best reading).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from schemas.events import CallerSignals, LifeThreat
from schemas.vocabulary import NOT_INCIDENTS, Category, Channel, Priority
from services.common.datapack import resolve_pack
from services.common.gazetteer import load_gazetteer
from services.common.text import clip, normalise
from services.triage.categories import CategoryEvidence, CategoryScorer
from services.triage.lexicon import Lexicon, built_in_lexicon
from services.triage.model import LinearModel, Prediction, built_in_model
from services.triage.phrases import PhraseIndex
from services.triage.reading import Reader, Reading
from services.triage.threats import Threat, ThreatDetector

SLA_SECONDS: dict[Priority, int] = {
    Priority.P1: 60,
    Priority.P2: 5 * 60,
    Priority.P3: 3 * 24 * 3600,
    Priority.P4: 3 * 24 * 3600,
}

# Categories where a unit goes out; the rest become agency work orders.
EMERGENCY_CATEGORIES = frozenset(
    {
        Category.MEDICAL,
        Category.FIRE,
        Category.TRAFFIC_ACCIDENT,
        Category.CRIME,
        Category.DISASTER,
        Category.RESCUE,
    }
)
# Categories that name a scene; their strong words make symptoms part of the scene.
SCENES = EMERGENCY_CATEGORIES - {Category.MEDICAL}
SCENE_POINTS = 3.0
STRONG_POINTS = 3.0
# Priorities each kind of category may take when no threat to life is found.
ALLOWED = {
    Category.INFORMATION: (Priority.P4,),
    Category.PRANK: (Priority.P4,),
    Category.GHOST: (Priority.P4,),
}
BELOW_P1 = (Priority.P2, Priority.P3, Priority.P4)
# Sentences of a report, each also read on its own by the model (a short one says too
# little to be read alone).
_SENTENCE_END = re.compile(r"[.!?\n]+(?:\s|$)")
MIN_SENTENCE_WORDS = 4
SHOWN_SENTENCE = 60  # characters of the sentence an explanation quotes

# Members looked up once: an enum's class attribute costs several dictionary look-ups, and
# classifying compares with these for every category.
_GHOST, _PRANK, _MEDICAL = Category.GHOST, Category.PRANK, Category.MEDICAL


@dataclass(frozen=True)
class Policy:
    """How the three readings are weighed; chosen by `make eval` on held-out writers."""

    rule_weight: float = 0.4  # log-probability per category-word point
    threat_weight: float = 0.3  # per detected complaint point (certain 2, possible 1)
    prank_alone: float = 0.5  # model probability that makes a prank with no sign of one
    symptom_at_scene: float = 0.25  # medical points kept when a scene's words are there
    p1_possible: float = 0.25  # model P1 probability that makes an emergency P1, to confirm
    p1_other: float = 0.7  # the same for a report of another category (units must then go)
    p1_over: float = 0.7  # the same, when the report says it is past or handled
    # A report of several sentences this close to P1 has each read alone; one that reaches
    # `p1_over` on its own makes the report P1, to confirm.
    p1_diluted: float = 0.1
    review_threshold: float = 0.5  # below this confidence a human decides the category


@dataclass(frozen=True)
class Classification:
    """The triage decision for one report."""

    category: Category
    priority: Priority
    agency: str
    confidence: float
    explanation: str
    needs_review: bool
    sla_seconds: int
    questions: tuple[str, ...] = ()
    threat: LifeThreat = "none"
    complaints: tuple[str, ...] = ()
    # Uncertain evidence of a threat to life: P1 now (or P3 for a number flagged for
    # pranks), for a call-taker to confirm, lower or raise with the questions.
    needs_confirmation: bool = False

    @property
    def dispatches_units(self) -> bool:
        """True when field units go out rather than an agency work order."""
        return self.category in EMERGENCY_CATEGORIES and self.priority in (Priority.P1, Priority.P2)


@dataclass(frozen=True)
class _Evidence:
    reading: Reading
    threat: Threat
    words: CategoryEvidence
    model: Prediction
    admissions: list[str] = field(default_factory=list)
    laughter: list[str] = field(default_factory=list)
    silent_caller: list[str] = field(default_factory=list)


class Classifier:
    """The triage decision from the report's words; pure and deterministic."""

    def __init__(
        self,
        *,
        threshold: float | None = None,
        policy: Policy | None = None,
        lexicon: Lexicon | None = None,
        model: LinearModel | None = None,
        place_names: Iterable[str] | None = None,
        known_words: Iterable[str] | None = None,
    ) -> None:
        policy = policy or Policy()
        if threshold is not None:
            policy = Policy(**{**policy.__dict__, "review_threshold": threshold})
        self.policy = policy
        self.threshold = policy.review_threshold
        lexicon = lexicon or built_in_lexicon()
        self.lexicon = lexicon
        self._model = model
        m = lexicon.modifiers
        # A place's name is never a slip of a keyword ("Kebaturan" is not "kebakaran").
        places = built_in_place_names() if place_names is None else place_names
        known = lexicon.common_words | {w for name in places for w in normalise(name).split()}
        known |= set(self.model.known_words if known_words is None else known_words)
        self.reader = Reader(
            language=lexicon.language.words,
            emoji=m.emoji,
            common=known,
            doubled=lexicon.language.doubled,
        )
        self.threats = ThreatDetector(lexicon, self.reader)
        self.words = CategoryScorer(lexicon, self.reader)
        # What the caller owns up to, laughs, or (in the call-taker's note) does not say.
        self._caller_signs: PhraseIndex[str] = PhraseIndex(
            [(p, "admit") for p in m.prank_admissions]
            + [(p, "laugh") for p in m.laughter]
            + [(p, "silent") for p in m.silent_caller],
            word=self.reader.pattern_word,
        )
        # Jokes and laughter are said as they are: a slip of "ngajak" is not "ngakak".
        serious = self.threats.vocabulary() | {
            w for c in Category if c is not Category.PRANK for w in self.words.vocabulary(c)
        }
        said_in_jest = PhraseIndex(
            [(p, "") for p in (*m.prank_admissions, *m.laughter)], word=self.reader.pattern_word
        ).vocabulary()
        jokes = (self.words.vocabulary(Category.PRANK) | said_in_jest) - serious
        threat_prefixes, threat_suffixes = self.threats.affixes()
        word_prefixes, word_suffixes = self.words.affixes()
        self.reader.learn(
            (self.threats.vocabulary() | self.words.vocabulary()) - jokes,
            run_together=self.threats.word_pairs(),
            affixes=(threat_prefixes | word_prefixes, threat_suffixes | word_suffixes),
        )
        self._negations = frozenset(
            self.reader.pattern_word(w) for w in m.negations if " " not in w
        )
        self._silence = frozenset(
            self.reader.pattern_word(w) for w in m.silence
        ) | self.words.vocabulary(Category.GHOST)
        self._category_questions = {
            c: tuple(rule.questions) for c, rule in lexicon.categories.items()
        }

    @property
    def model(self) -> LinearModel:
        """The trained model: the one given, else the built-in one (read when first needed, so
        that the trainer can read reports before any model exists)."""
        if self._model is None:
            self._model = built_in_model()
        return self._model

    def agency_of(self, category: Category) -> str:
        """The agency responsible for a category."""
        return self.lexicon.categories[category].agency

    def read(self, text: str) -> Reading:
        """The report as triage reads it."""
        return self.reader.read(text)

    def evidence(self, reading: Reading) -> _Evidence:
        """What each of the three readers finds in a report."""
        admissions: list[str] = []
        laughter: list[str] = []
        silent: list[str] = []
        tokens = reading.tokens
        for m in self._caller_signs.find(tokens, reading.words):
            said = " ".join(tokens[m.start : m.end])
            if m.value == "silent":
                silent.append(said)
                continue
            if any(t in self._negations for t in tokens[max(0, m.start - 2) : m.start]):
                continue  # "this is not a prank", "bukan bercanda": the opposite
            if m.end < len(tokens) and tokens[m.end] == "atau":
                continue  # "hoax atau beneran?": a question, owning up to nothing
            (admissions if m.value == "admit" else laughter).append(said)
        return _Evidence(
            reading=reading,
            threat=self.threats.assess(reading),
            words=self.words.score(reading),
            model=self.model.predict(reading),
            admissions=admissions,
            laughter=laughter,
            silent_caller=silent,
        )

    def classify(
        self, *, text: str, channel: Channel, signals: CallerSignals | None = None
    ) -> Classification:
        """Classify one report."""
        reading = self.read(text)
        if (signals is not None and signals.ghost) or not reading.tokens:
            return self._decision(
                Category.GHOST, Priority.P4, 1.0, "empty or silent report", needs_review=False
            )
        found = self.evidence(reading)
        threat = found.threat
        if found.admissions and not threat.certain:
            said = ", ".join(dict.fromkeys(found.admissions))
            return self._decision(
                Category.PRANK,
                Priority.P4,
                0.8,
                f"caller owns up to a joke: {said}",
                needs_review=False,
            )
        scores = self._scores(found)
        category, confidence, why = self._category(found, scores)
        if threat.certain and category in NOT_INCIDENTS:
            # Laughing while someone is trapped is no prank.
            category = max(EMERGENCY_CATEGORIES, key=lambda c: scores[c])
            why += f"; a life is at risk: {category.value}, not a prank"
        elif threat.findings and category is _GHOST:
            # A silent line that carries a sign of distress ("penelepon diam, terdengar napas
            # ngorok") is a caller who cannot speak, not a pocket dial.
            category = max(EMERGENCY_CATEGORIES, key=lambda c: scores[c])
            why += f"; a life may be at risk: {category.value}, not a silent call"
        priority, reasons, questions = self._priority(category, found, signals)
        if priority is Priority.P1 and category not in EMERGENCY_CATEGORIES:
            # A life at risk needs units, which only an emergency category sends.
            before = category
            category = max(EMERGENCY_CATEGORIES, key=lambda c: scores[c])
            reasons.append(f"{before.value} -> {category.value}: units must go")
            questions = questions or self._category_questions.get(category, ())
        needs_review = confidence < self.threshold and priority is not Priority.P1
        if not needs_review and priority is not Priority.P1 and _unrecognised(found):
            # No word of the lexicon, no threat, no sign of a joke: the model alone decided,
            # on its weakest ground (about one report in forty), so a person looks first.
            needs_review = True
            reasons.append("no rule recognised the report: held for review")
        if confidence < self.threshold and priority is Priority.P1:
            reasons.append(
                f"not held for review (confidence {confidence:.2f}): a life may be at risk"
            )
        return self._decision(
            category,
            priority,
            confidence,
            "; ".join([why, *reasons]),
            needs_review=needs_review,
            questions=questions,
            threat=threat,
        )

    def _scores(self, found: _Evidence) -> dict[Category, float]:
        """Each category's model log-probability plus its words' and complaints' points."""
        policy = self.policy
        threat_points = found.threat.categories()
        words = dict(found.words.scores)
        # Symptoms at a scene (a crash, a fire, an attack, a flood) are the scene's: a crash
        # with an unconscious rider is a traffic accident, to which an ambulance goes too.
        if any(said >= SCENE_POINTS for c, said in words.items() if c in SCENES):
            for points in (words, threat_points):
                if _MEDICAL in points:
                    points[_MEDICAL] *= policy.symptom_at_scene
        # Silence is a ghost call; a report that says anything else is not one. A prank needs
        # its own sign (a joke's words, laughter, owning up): a vague call goes to a human,
        # and a prank verdict counts against the caller's number.
        # Numbers are the call-taker's note of the line ("open line 40 dtk", "0:03"); a note
        # that the caller said nothing may tell what else the line carried.
        ghost_possible = bool(found.silent_caller) or all(
            w in self._silence or w.isdigit() for w in found.reading.words
        )
        prank_possible = (
            bool(found.words.scores.get(_PRANK) or found.laughter or found.admissions)
            or found.model.category.get(_PRANK, 0.0) >= policy.prank_alone
        )
        log = math.log
        scores = {
            category: log(1e-9 if p < 1e-9 else p)
            for category, p in found.model.category.items()
            if (category is not _GHOST or ghost_possible)
            and (category is not _PRANK or prank_possible)
        }
        for category, said in words.items():
            if category in scores:
                scores[category] += policy.rule_weight * said
        for category, found_points in threat_points.items():
            if category in scores:
                scores[category] += policy.threat_weight * found_points
        if found.silent_caller and _GHOST in scores:
            # The note that the caller said nothing outweighs what the line carried ("suara
            # mesin motor" is no crash).
            scores[_GHOST] += policy.rule_weight * STRONG_POINTS
        return scores

    def _category(
        self, found: _Evidence, scores: dict[Category, float]
    ) -> tuple[Category, float, str]:
        """The best category, its confidence and why."""
        if (found.laughter or found.admissions) and found.threat.other_senses:
            # "ada kebakaran di hati sy... wkwk": a pun on a threat word, laughed at.
            scores[_PRANK] += self.policy.rule_weight * STRONG_POINTS
        best = max(scores, key=scores.__getitem__)
        top = max(scores.values())
        exp = math.exp
        total = sum([exp(s - top) for s in scores.values()])
        confidence = round(1.0 / total, 2)
        label = best.value
        parts = [f"{label} ({confidence:.2f})"]
        pulled = found.model.top("category", label)
        if pulled:
            parts.append("model: " + ", ".join(pulled))
        if found.words.matched.get(best):
            parts.append("words: " + ", ".join(found.words.matched[best]))
        return best, confidence, parts[0] + ("; " + "; ".join(parts[1:]) if parts[1:] else "")

    def _priority(
        self, category: Category, found: _Evidence, signals: CallerSignals | None
    ) -> tuple[Priority, list[str], tuple[str, ...]]:
        """The priority, the reasons and the key questions."""
        threat = found.threat
        p1 = found.model.priority.get(Priority.P1, 0.0)
        reasons: list[str] = []
        found_complaints = {f.complaint for f in threat.findings}
        discounted = [d for d in threat.discounted if d.finding.complaint not in found_complaints]
        for d in discounted[:3]:
            reasons.append(f"not counted: {d.finding.name} '{d.finding.words}' ({d.reason})")
        if category in NOT_INCIDENTS:
            return Priority.P4, reasons, ()
        flagged = signals is not None and signals.prank_flagged
        if threat.findings:
            kind = "life at risk" if threat.certain else "life may be at risk"
            named = ", ".join(f"{x.name} '{x.words}'" for x in threat.findings[:3])
            if flagged and not threat.certain:
                assert signals is not None
                reasons.append(
                    f"{kind}: {named}; number flagged after {signals.prior_pranks} pranks -> P3, "
                    "to confirm by calling back"
                )
                return Priority.P3, reasons, threat.questions
            reasons.append(f"{kind}: {named} -> P1" + ("" if threat.certain else ", to confirm"))
            if flagged:
                reasons.append("number flagged for pranks, but a life is at risk")
            return Priority.P1, reasons, threat.questions
        needed = (
            self.policy.p1_possible if category in EMERGENCY_CATEGORIES else self.policy.p1_other
        )
        explained = bool(threat.discounted) and not threat.findings
        if threat.over or threat.other_senses or threat.complaint or threat.unhurt or explained:
            # Past, handled, a complaint's request, nobody hurt, threat words in another
            # sense, or every threat word explained away (denied, feared, an animal's): the
            # model's P1 must be sure.
            needed = max(needed, self.policy.p1_over)
        said_apart = ""
        if self.policy.p1_diluted <= p1 < needed:
            # Words around a threat dilute it for the model (a forward's other news, a
            # situation report's fields), they do not hide it: each sentence is also read
            # on its own.
            alone, sentence = self._sentence_p1(found.reading.text)
            if alone >= max(needed, self.policy.p1_over):
                p1, said_apart = alone, f" (the sentence '{clip(sentence, SHOWN_SENTENCE)}')"
        if p1 >= needed:
            if signals is not None and signals.prank_flagged:
                reasons.append(f"number flagged after {signals.prior_pranks} pranks -> P3")
                return Priority.P3, reasons, ()
            pulled = found.model.top("priority", Priority.P1.value)
            said = f": {', '.join(pulled)}" if pulled else ""
            reasons.append(f"model P1 {p1:.2f}{said_apart}{said} -> P1, to confirm")
            return Priority.P1, reasons, self._category_questions.get(category, ())
        allowed = ALLOWED.get(category, BELOW_P1)
        priority = max(allowed, key=lambda p: found.model.priority.get(p, 0.0))
        if signals is not None and signals.prank_flagged and priority is Priority.P2:
            reasons.append(f"number flagged after {signals.prior_pranks} pranks -> P3")
            priority = Priority.P3
        return priority, reasons, ()

    def _sentence_p1(self, text: str) -> tuple[float, str]:
        """The model's highest P1 probability for one sentence of a report of several, and
        that sentence (0 and "" for a report of one sentence)."""
        sentences = [
            part.strip()
            for part in _SENTENCE_END.split(text)
            if len(part.split()) >= MIN_SENTENCE_WORDS
        ]
        best, said = 0.0, ""
        if len(sentences) < 2:
            return best, said
        for sentence in sentences:
            p1 = self.model.predict(self.read(sentence)).priority.get(Priority.P1, 0.0)
            if p1 > best:
                best, said = p1, sentence
        return best, said

    def _decision(
        self,
        category: Category,
        priority: Priority,
        confidence: float,
        explanation: str,
        *,
        needs_review: bool,
        questions: tuple[str, ...] = (),
        threat: Threat | None = None,
    ) -> Classification:
        level: LifeThreat = "none" if threat is None else threat.level
        if priority is Priority.P1 and level == "none":
            level = "possible"  # the model's P1: evidence to confirm
        confirm = bool(questions) and level == "possible" and category not in NOT_INCIDENTS
        return Classification(
            category=category,
            priority=priority,
            agency=self.lexicon.categories[category].agency,
            confidence=confidence,
            explanation=explanation,
            needs_review=needs_review,
            sla_seconds=SLA_SECONDS[priority],
            questions=tuple(questions),
            threat=level,
            complaints=tuple(f.complaint for f in threat.findings) if threat else (),
            needs_confirmation=confirm,
        )


def _unrecognised(found: _Evidence) -> bool:
    """True when only the model read anything in the report."""
    threat = found.threat
    return not (
        found.words.scores
        or threat.findings
        or threat.discounted
        or found.admissions
        or found.laughter
        or found.silent_caller
    )


@cache
def built_in_place_names() -> tuple[str, ...]:
    """The names of the built-in data pack's areas."""
    return tuple(a.name for a in load_gazetteer(resolve_pack(None)).areas)


@cache
def default_classifier() -> Classifier:
    """One classifier per process with the built-in lexicon and model."""
    return Classifier()
