"""The life-threat detector: chief complaints found in a report, and what discounts them.

Built for recall. A complaint's certain words make a finding certain, its possible words
a possible one; both make the incident P1 (the possible ones with the key questions, so a
call-taker confirms or lowers it). A finding is discounted only for a reason the report
itself gives: denied ("tidak ada korban"), hypothetical ("takut tertimpa"), softened ("mau
pingsan": certain -> possible, possible -> none), resolved ("sudah sadar"), in the past or
handled with nothing said to be still going on, or a possible finding in a complaint about
something that keeps happening. Every discount is kept with its reason for the explanation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from schemas.events import LifeThreat
from schemas.vocabulary import Category
from services.triage.lexicon import Complaint, Lexicon
from services.triage.phrases import Match, PhraseIndex
from services.triage.reading import Reader, Reading

NEGATION_REACH = 3
SOFTEN_REACH = 1  # "mau pingsan"; in "mau melahirkan, ketuban pecah" it is the birth's
HYPOTHETICAL_REACH = 4
DENIED_AFTER_REACH = 1
MAX_QUESTIONS = 4
# "sejak kemarin" is since yesterday: still going on, not past.
SINCE = frozenset({"sejak", "since", "dari"})


@dataclass(frozen=True)
class Finding:
    """A complaint the words of a report point to."""

    complaint: str
    name: str
    category: Category
    words: str
    certain: bool


@dataclass(frozen=True)
class Discounted:
    """A finding that does not count, and why."""

    finding: Finding
    reason: str


@dataclass(frozen=True)
class Threat:
    """What a report says about a threat to life."""

    findings: tuple[Finding, ...]
    discounted: tuple[Discounted, ...]
    questions: tuple[str, ...]
    over: str | None = None  # "in the past" or "already handled", with nothing still going on
    other_senses: tuple[str, ...] = ()  # phrases meant in another sense ("banjir diskon")
    complaint: bool = False  # the report asks for a fix or says it keeps happening

    @property
    def certain(self) -> bool:
        """A life is at risk, by the report's own words."""
        return any(f.certain for f in self.findings)

    @property
    def possible(self) -> bool:
        """A life may be at risk: to be confirmed by a call-taker."""
        return bool(self.findings) and not self.certain

    @property
    def level(self) -> LifeThreat:
        """`certain`, `possible` or `none`."""
        return "certain" if self.certain else "possible" if self.findings else "none"

    def categories(self) -> dict[Category, float]:
        """Points for the categories of the complaints found (certain ones count double)."""
        points: dict[Category, float] = {}
        for f in self.findings:
            points[f.category] = points.get(f.category, 0.0) + (2.0 if f.certain else 1.0)
        return points


@dataclass(frozen=True)
class _Entry:
    complaint: Complaint
    certain: bool


class ThreatDetector:
    """Finds the chief complaints of a report and weighs the words around them."""

    def __init__(self, lexicon: Lexicon, reader: Reader) -> None:
        concepts = lexicon.complaints.concepts
        word = reader.pattern_word
        self.complaints = {c.id: c for c in lexicon.complaints.complaint}

        def index(entries: Iterable[tuple[str, object]]) -> PhraseIndex[object]:
            return PhraseIndex(entries, concepts=concepts, word=word)

        self._findings = index(
            [(p, _Entry(c, True)) for c in self.complaints.values() for p in c.certain]
            + [(p, _Entry(c, False)) for c in self.complaints.values() for p in c.possible]
        )
        self._per_complaint = {
            c.id: {
                kind: index([(p, kind) for p in getattr(c, kind)])
                for kind in ("resolved", "lower", "context", "not_when")
            }
            for c in self.complaints.values()
        }
        m = lexicon.modifiers
        self._other_senses = index([(p, "other") for p in m.other_senses])
        self._negations = index([(p, "not") for p in m.negations])
        self._fillers = frozenset(reader.pattern_word(w) for w in m.denial_fillers)
        self._soften = index([(p, "soft") for p in m.soften])
        self._hypothetical = index([(p, "if") for p in m.hypothetical])
        self._denied_after = index([(p, "nil") for p in m.denied_after])
        self._report_wide = index(
            [(p, "past") for p in m.past]
            + [(p, "still") for p in m.still]
            + [(p, "handled") for p in m.handled]
            + [(p, "habitual") for p in m.habitual]
            + [(p, "request") for p in m.requests]
        )

    def vocabulary(self) -> set[str]:
        """Every plain word the detector's patterns name."""
        out: set[str] = set()
        for idx in (
            self._findings,
            self._other_senses,
            self._negations,
            self._soften,
            self._hypothetical,
            self._denied_after,
            self._report_wide,
        ):
            out |= idx.vocabulary()
        for kinds in self._per_complaint.values():
            for idx in kinds.values():
                out |= idx.vocabulary()
        return out

    def word_pairs(self) -> set[str]:
        """Pairs of words the complaints name side by side, run together ("tidaksadar")."""
        return self._findings.word_pairs()

    def masked(self, reading: Reading) -> set[int]:
        """Token positions taken by phrases meant in another sense ("kereta api")."""
        return {
            i
            for m in self._other_senses.find_longest(reading.tokens)
            for i in range(m.start, m.end)
        }

    def assess(self, reading: Reading, *, masked: set[int] | None = None) -> Threat:
        """The findings of one report, each kept or discounted with its reason."""
        tokens = reading.tokens
        masked = self.masked(reading) if masked is None else masked
        # "kelelep... kelelep tresna": a word also said in another sense is a pun on it.
        punned = {tokens[i] for i in masked}
        over, past_at, habitual, request = self._report_wide_signals(tokens)
        kept: dict[str, Finding] = {}
        discounted: list[Discounted] = []
        for m in self._best_matches(tokens, masked):
            entry = m.value
            assert isinstance(entry, _Entry)
            finding = Finding(
                complaint=entry.complaint.id,
                name=entry.complaint.name,
                category=entry.complaint.category,
                words=" ".join(tokens[m.start : m.end]),
                certain=entry.certain,
            )
            reason = self._discount(m, reading, finding, entry.complaint)
            if reason is None and tokens[m.start] in punned and m.end - m.start == 1:
                reason = "a pun on another sense of the word"
            if reason is None and any(
                reading.clause_start(p) == reading.clause_start(m.start) for p in past_at
            ):
                reason = "in the past"
            if reason is None and over:
                reason = over
            if reason is None and not finding.certain and habitual:
                reason = "keeps happening (a complaint)"
            if reason is not None and reason.startswith("softened") and finding.certain:
                finding, reason = replace(finding, certain=False), None
            if reason is not None:
                discounted.append(Discounted(finding, reason))
                continue
            held = kept.get(finding.complaint)
            if held is None or (finding.certain and not held.certain):
                kept[finding.complaint] = finding
        findings = tuple(sorted(kept.values(), key=lambda f: not f.certain))
        senses = tuple(
            " ".join(tokens[m.start : m.end]) for m in self._other_senses.find_longest(tokens)
        )
        return Threat(
            findings, tuple(discounted), self._questions(findings), over, senses, habitual or request
        )

    def _report_wide_signals(
        self, tokens: Sequence[str]
    ) -> tuple[str | None, list[int], bool, bool]:
        """Whether the whole report is over (past or handled, nothing still going on), where
        it says something is past, whether it says it keeps happening, and whether it asks
        for a fix as a complaint does."""
        found = self._report_wide.find(tokens)
        handled = [m for m in found if m.value == "handled"]
        past = [
            m for m in found if m.value == "past" and not (m.start and tokens[m.start - 1] in SINCE)
        ]
        # "sekarang sudah stabil" is handled, not still going on.
        still = [
            m for m in found if m.value == "still" and not any(_overlap(m, h) for h in handled)
        ]
        over = None
        if not still and handled:
            over = "already handled"
        elif not still and past:
            over = "in the past"
        return (
            over,
            [m.start for m in past],
            any(m.value == "habitual" for m in found),
            any(m.value == "request" for m in found),
        )

    def _best_matches(self, tokens: Sequence[str], masked: set[int]) -> list[Match[object]]:
        """Every finding's match clear of masked words; of one complaint at one place, the
        longest (so "tidak bernapas" is not also read as a bare "bernapas")."""
        best: dict[tuple[str, int], Match[object]] = {}
        for m in self._findings.find(tokens):
            if any(i in masked for i in range(m.start, m.end)):
                continue
            entry = m.value
            assert isinstance(entry, _Entry)
            key = (entry.complaint.id, m.start)
            held = best.get(key)
            if held is None or (m.end - m.start, m.value.certain) > (  # type: ignore[attr-defined]
                held.end - held.start,
                held.value.certain,  # type: ignore[attr-defined]
            ):
                best[key] = m
        return sorted(best.values(), key=lambda m: m.start)

    def _discount(
        self, m: Match[object], reading: Reading, finding: Finding, complaint: Complaint
    ) -> str | None:
        tokens = reading.tokens
        clause = reading.clause_start(m.start)
        first = tokens[m.start]

        def before(index: PhraseIndex[object], reach: int) -> str | None:
            window = tokens[max(clause, m.start - reach) : m.start]
            hits = index.find(window)
            return " ".join(window[hits[0].start : hits[0].end]) if hits else None

        if not self._negations.find([first]):
            # "tidak ada (yang) korban", "no one hurt": a denial reaches over these words
            # only; "tidak gerak, darahnya banyak" denies the stillness, not the blood.
            at = m.start
            while at > max(clause, m.start - NEGATION_REACH) and tokens[at - 1] in self._fillers:
                at -= 1
            if at > clause and self._negations.find(tokens[at - 1 : at]):
                return f"denied ({' '.join(tokens[at - 1 : m.start])})"
        after = tokens[m.end : m.end + DENIED_AFTER_REACH + 1]
        if any(d.start == 0 for d in self._denied_after.find(after)):
            return "denied after"
        hedge = before(self._hypothetical, HYPOTHETICAL_REACH)
        if hedge:
            return f"hypothetical ({hedge})"
        soft = None if self._soften.find([first]) else before(self._soften, SOFTEN_REACH)
        kinds = self._per_complaint[complaint.id]
        if complaint.context and not kinds["context"].find(tokens):
            return "out of context"
        if any(_overlap(n, m) for n in kinds["not_when"].find(tokens)):
            return "not a person at risk"
        resolved = [
            r
            for r in kinds["resolved"].find(tokens)
            if not _inside(r, m) and not (r.start and self._negations.find(tokens[r.start - 1 : r.start]))
        ]
        if resolved:
            r = resolved[0]
            return f"resolved ({' '.join(tokens[r.start : r.end])})"
        if not finding.certain and kinds["lower"].find(tokens):
            return "a lesser danger"
        return f"softened ({soft})" if soft else None

    def _questions(self, findings: Sequence[Finding]) -> tuple[str, ...]:
        """All questions of the first complaint, the first of each other, at most four."""
        out: list[str] = []
        for n, f in enumerate(findings):
            questions = self.complaints[f.complaint].questions
            for q in questions if n == 0 else questions[:1]:
                if q not in out:
                    out.append(q)
        return tuple(out[:MAX_QUESTIONS])


def _overlap(a: Match[object], b: Match[object]) -> bool:
    return a.start < b.end and b.start < a.end


def _inside(inner: Match[object], outer: Match[object]) -> bool:
    return inner.start >= outer.start and inner.end <= outer.end
