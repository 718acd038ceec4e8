"""The life-threat detector: chief complaints found in a report, and what discounts them.

Built for recall. A complaint's certain words make a finding certain, its possible words
a possible one; both make the incident P1 (the possible ones with the key questions, so a
call-taker confirms or lowers it). A finding is discounted only for a reason the report
itself gives: denied ("tidak ada korban"), hypothetical ("takut tertimpa"), softened ("mau
pingsan": certain -> possible, possible -> none), resolved ("sudah sadar"), in the past or
handled with nothing said to be still going on (a finding told after the last word that it
was handled is news of its own), or a possible finding in a complaint about something that
keeps happening. Every discount is kept with its reason for the explanation.
A finding heard from someone else ("katanya ...") counts, as a possible one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from schemas.events import LifeThreat
from schemas.vocabulary import Category
from services.triage.lexicon import Complaint, Lexicon
from services.triage.phrases import Match, PatternError, PhraseIndex, longest_first
from services.triage.reading import Reader, Reading

NEGATION_REACH = 3
SOFTEN_REACH = 1  # "mau pingsan"; in "mau melahirkan, ketuban pecah" it is the birth's
HYPOTHETICAL_REACH = 4
DENIED_AFTER_REACH = 1
# "kejang demam pada balita itu gejalanya seperti apa": the topic's words, its "itu", the
# question's
ASKED_AFTER_REACH = 9
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
    unhurt: bool = False  # the report says outright that nobody is hurt

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
class _Tag:
    """What a pattern of the report-wide scan stands for."""

    kind: str  # finding | other | report | resolved | lower | context | not_when
    complaint: Complaint | None = None
    certain: bool = False
    signal: str = ""  # of a report-wide pattern: past, still, handled, habitual, request


@dataclass
class _Scan:
    """One pass over a report: every pattern of every kind, found at once."""

    findings: list[Match[_Tag]]
    other_senses: list[Match[_Tag]]
    report: list[Match[_Tag]]
    per_complaint: dict[tuple[str, str], list[Match[_Tag]]]

    def of(self, kind: str, complaint: Complaint) -> list[Match[_Tag]]:
        """A complaint's matches of one kind (resolved, lower, context, not_when)."""
        return self.per_complaint.get((kind, complaint.id), [])


@dataclass(frozen=True)
class _Signals:
    """What the report as a whole says of its findings (`_report_wide_signals`)."""

    over: str | None = None  # past, handled or a rumour asked about: why it is over
    over_at: int = 0  # the first word after the last signal that makes it over
    past_at: tuple[int, ...] = ()  # where it says something is past
    complaint: bool = False  # it says it keeps happening, or asks for a fix
    habitual: bool = False  # it says it keeps happening
    unhurt: bool = False  # it says nobody is hurt
    watched_at: tuple[int, ...] = ()  # where it speaks of a video or the news


NO_SIGNALS = _Signals()


class ThreatDetector:
    """Finds the chief complaints of a report and weighs the words around them."""

    def __init__(self, lexicon: Lexicon, reader: Reader) -> None:
        concepts = lexicon.complaints.concepts
        word = reader.pattern_word
        self.complaints = {c.id: c for c in lexicon.complaints.complaint}

        def index(entries: Iterable[tuple[str, object]]) -> PhraseIndex[object]:
            return PhraseIndex(entries, concepts=concepts, word=word)

        m = lexicon.modifiers
        complaints = self.complaints.values()
        # Every pattern read over the whole report, in one index: one pass a report.
        entries: list[tuple[str, _Tag]] = []
        for c in complaints:
            entries += [(p, _Tag("finding", c, certain=True)) for p in c.certain]
            entries += [(p, _Tag("finding", c)) for p in c.possible]
            for kind in ("resolved", "lower", "context", "not_when"):
                entries += [(p, _Tag(kind, c)) for p in getattr(c, kind)]
        entries += [(p, _Tag("other")) for p in m.other_senses]
        for signal in (
            "past",
            "still",
            "ongoing",
            "handled",
            "habitual",
            "requests",
            "unhurt",
            "truth_questions",
            "second_hand",
            "watched",
        ):
            entries += [(p, _Tag("report", signal=signal)) for p in getattr(m, signal)]
        self._scan: PhraseIndex[_Tag] = PhraseIndex(entries, concepts=concepts, word=word)
        self._finding_patterns = PhraseIndex(
            [(p, "finding") for c in complaints for p in (*c.certain, *c.possible)],
            concepts=concepts,
            word=word,
        )
        # Read in the few words around a finding.
        self._negation_words = one_words(m.negations, word, "negations")
        self._fillers = frozenset(reader.pattern_word(w) for w in m.denial_fillers)
        self._soft_words = one_words(m.soften, word, "soften")
        self._almost_words = one_words(m.almost, word, "almost")
        # Who a finding may be about (`_person_after`).
        self._people = frozenset(word(w) for w in concepts["person"] if " " not in w)
        self._hypothetical = index([(p, "if") for p in m.hypothetical])
        self._hearsay = index([(p, "heard") for p in m.hearsay])
        self._denied_after = index([(p, "nil") for p in m.denied_after])
        self._asked_after = index([(p, "asked") for p in m.asked_after])

    def _indexes(self) -> tuple[PhraseIndex[Any], ...]:
        """Every phrase index the detector reads with."""
        return (
            self._scan,
            self._hypothetical,
            self._hearsay,
            self._denied_after,
            self._asked_after,
        )

    def vocabulary(self) -> set[str]:
        """Every plain word the detector's patterns name."""
        out: set[str] = set()
        for idx in self._indexes():
            out |= idx.vocabulary()
        return out | self._negation_words | self._soft_words | self._almost_words

    def affixes(self) -> tuple[set[str], set[str]]:
        """Every beginning and ending the detector's patterns ask for."""
        prefixes: set[str] = set()
        suffixes: set[str] = set()
        for idx in self._indexes():
            more, fewer = idx.affixes()
            prefixes |= more
            suffixes |= fewer
        return prefixes, suffixes

    def word_pairs(self) -> set[str]:
        """Pairs of words the complaints name side by side, run together ("tidaksadar")."""
        return self._finding_patterns.word_pairs()

    def scan(self, reading: Reading) -> _Scan:
        """Every report-wide pattern found in one pass, sorted by kind."""
        out = _Scan([], [], [], {})
        for m in self._scan.find(reading.tokens, reading.words):
            tag = m.value
            if tag.kind == "finding":
                out.findings.append(m)
            elif tag.kind == "other":
                out.other_senses.append(m)
            elif tag.kind == "report":
                out.report.append(m)
            else:
                assert tag.complaint is not None
                out.per_complaint.setdefault((tag.kind, tag.complaint.id), []).append(m)
        out.other_senses = longest_first(out.other_senses, len(reading.tokens))
        return out

    def other_senses(self, reading: Reading) -> list[Match[_Tag]]:
        """Phrases meant in another sense ("kereta api"), longest first, without overlaps."""
        return self.scan(reading).other_senses

    def assess(self, reading: Reading) -> Threat:
        """The findings of one report, each kept or discounted with its reason."""
        tokens = reading.tokens
        scan = self.scan(reading)
        other = scan.other_senses
        masked = {i for m in other for i in range(m.start, m.end)}
        # "kelelep... kelelep tresna": a word also said in another sense is a pun on it.
        punned = {tokens[i] for i in masked}
        signals = self._report_wide_signals(reading, scan.report)
        over = signals.over
        kept: dict[str, Finding] = {}
        discounted: list[Discounted] = []
        for m in self._best_matches(scan.findings, masked):
            entry = m.value
            assert entry.complaint is not None
            finding = Finding(
                complaint=entry.complaint.id,
                name=entry.complaint.name,
                category=entry.complaint.category,
                words=" ".join(tokens[m.start : m.end]),
                certain=entry.certain,
            )
            reason = self._discount(m, reading, finding, entry.complaint, scan)
            # What "katanya" tells may also be past or over: heard is weighed last.
            heard = reason if reason is not None and reason.startswith("heard") else None
            if heard:
                reason = None
            # Softened, a certain finding is a possible one, and what makes a report past,
            # watched or over weighs on it as on any other ("mau bunuh diri, ternyata cuma
            # status WA").
            if reason is not None and reason.startswith("softened") and finding.certain:
                finding, reason = replace(finding, certain=False), None
            if reason is None and tokens[m.start] in punned and m.end - m.start == 1:
                reason = "a pun on another sense of the word"
            if reason is None and any(
                reading.clause_start(p) == reading.clause_start(m.start)
                and not (p < m.start and _contrast_between(tokens, p, m.start))
                for p in signals.past_at
            ):
                reason = "in the past"
            if reason is None and any(
                reading.clause_start(p) == reading.clause_start(m.start)
                and not (p < m.start and any(t in SUDDEN for t in tokens[p : m.start]))
                for p in signals.watched_at
            ):
                reason = "watched on a video, the news or a film"
            # Told after the last word that it was handled, a finding is news of its own
            # ("sudah membaik kemarin, tadi pagi jatuh pingsan tidak bangun").
            if (
                reason is None
                and over
                and not _contrast_between(tokens, signals.over_at, m.start)
                and not (over == HANDLED and m.start >= signals.over_at)
            ):
                reason = over  # what "katanya" tells may be a rumour asked about, not told
            if reason is None and not finding.certain and signals.habitual:
                reason = "keeps happening (a complaint)"
            if reason is None and heard:
                finding = replace(finding, certain=False)
            if reason is not None:
                discounted.append(Discounted(finding, reason))
                continue
            held = kept.get(finding.complaint)
            if held is None or (finding.certain and not held.certain):
                kept[finding.complaint] = finding
        findings = tuple(sorted(kept.values(), key=lambda f: not f.certain))
        senses = tuple(" ".join(tokens[m.start : m.end]) for m in other)
        return Threat(
            findings,
            tuple(discounted),
            self._questions(findings),
            over,
            senses,
            signals.complaint,
            signals.unhurt,
        )

    def _report_wide_signals(self, reading: Reading, found: Sequence[Match[_Tag]]) -> _Signals:
        """Whether the whole report is over (past or handled, nothing still going on, or a
        rumour asked about: where it was heard and whether it is true), where
        it says something is past, whether it says it keeps happening, whether it asks
        for a fix as a complaint does, and where it speaks of a video or the news (when
        nothing is said to go on now); with the first word after the last of the signals
        that make it over (a finding after a "but" past that word is not over)."""
        if not found:  # most reports
            return NO_SIGNALS
        tokens = reading.tokens
        handled = [m for m in found if m.value.signal == "handled"]
        past = [
            m
            for m in found
            if m.value.signal == "past" and not (m.start and tokens[m.start - 1] in SINCE)
        ]
        # "sekarang sudah stabil", "sekarang alhamdulillah sudah sembuh": handled, not
        # still going on.
        still = [
            m
            for m in found
            if m.value.signal == "still"
            and not any(
                _overlap(m, h)
                or (
                    h.start > m.start
                    and reading.clause_start(h.start) == reading.clause_start(m.start)
                )
                for h in handled
            )
        ]
        over = None
        over_at = max((m.end for m in (handled if handled else past)), default=0)
        signals = {m.value.signal for m in found}
        # What goes on and on, told after the last word that it was handled, is the latest
        # news ("sudah dievakuasi, kepalanya berdarah terus").
        ongoing_after = any(m.value.signal == "ongoing" and m.start >= over_at for m in found)
        if {"truth_questions", "second_hand"} <= signals:
            over, over_at = RUMOUR, 0
        elif not still and handled and not ongoing_after:
            over = HANDLED
        elif not still and past and "ongoing" not in signals:
            over = "in the past"
        watched: tuple[int, ...] = ()
        if "watched" in signals and not still and not any(t in HELP for t in tokens):
            # "lagi nonton film, tiba-tiba bapak pingsan": what happens while watching is lived.
            watched = tuple(
                m.start
                for m in found
                if m.value.signal == "watched" and not (m.start and tokens[m.start - 1] in WHILE)
            )
        return _Signals(
            over=over,
            over_at=over_at,
            past_at=tuple(m.start for m in past),
            complaint="habitual" in signals or "requests" in signals,
            habitual="habitual" in signals,
            unhurt="unhurt" in signals,
            watched_at=watched,
        )

    @staticmethod
    def _best_matches(found: Sequence[Match[_Tag]], masked: set[int]) -> list[Match[_Tag]]:
        """Every finding's match clear of masked words; of one complaint at one place, the
        longest (so "tidak bernapas" is not also read as a bare "bernapas")."""
        if not found:
            return []
        best: dict[tuple[str, int], Match[_Tag]] = {}
        for m in found:
            if any(i in masked for i in range(m.start, m.end)):
                continue
            assert m.value.complaint is not None
            key = (m.value.complaint.id, m.start)
            held = best.get(key)
            if held is None or (m.end - m.start, m.value.certain) > (
                held.end - held.start,
                held.value.certain,
            ):
                best[key] = m
        return sorted(best.values(), key=lambda m: m.start)

    def _discount(
        self,
        m: Match[_Tag],
        reading: Reading,
        finding: Finding,
        complaint: Complaint,
        scan: _Scan,
    ) -> str | None:
        tokens = reading.tokens
        clause = reading.clause_start(m.start)
        first = tokens[m.start]
        if first in self._negation_words and m.start + 1 in reading.clause_starts:
            # "perlu ke dokter gak? ... napasnya biasa": the "no" ends the clause before it.
            return "its 'no' ends the clause before"

        def before(index: PhraseIndex[object], reach: int) -> str | None:
            window = tokens[max(clause, m.start - reach) : m.start]
            hits = index.find(window)
            return " ".join(window[hits[0].start : hits[0].end]) if hits else None

        if first not in self._negation_words:
            # "tidak ada (yang) korban", "no one hurt": a denial reaches over these words
            # only; "tidak gerak, darahnya banyak" denies the stillness, not the blood.
            at = m.start
            while at > max(clause, m.start - NEGATION_REACH) and tokens[at - 1] in self._fillers:
                at -= 1
            if at > clause and tokens[at - 1] in self._negation_words:
                return f"denied ({' '.join(tokens[at - 1 : m.start])})"
        after = tokens[m.end : m.end + DENIED_AFTER_REACH + 1]
        if any(d.start == 0 for d in self._denied_after.find(after)):
            return "denied after"
        asked = tokens[m.end : m.end + ASKED_AFTER_REACH]
        if any(a.start == 0 or asked[a.start - 1] == "itu" for a in self._asked_after.find(asked)):
            return "asked about, not told"
        hedge = before(self._hypothetical, HYPOTHETICAL_REACH)
        if hedge:
            return f"hypothetical ({hedge})"
        if (
            first not in self._negation_words
            and m.start > clause
            and tokens[m.start - 1] in self._almost_words
        ):
            return f"did not happen ({tokens[m.start - 1]})"
        soft = None
        if (
            first not in self._soft_words
            and m.start > clause
            and tokens[m.start - 1] in self._soft_words
        ):
            soft = tokens[m.start - 1]
        if complaint.context and not scan.of("context", complaint):
            return "out of context"
        # A thing in the clause before ("... numpak motor, wonge gosong ora obah") is not
        # what the finding is about, unless a person is named after the thing ("tiang roboh,
        # warga tertimpa").
        if any(
            _overlap(n, m) and n.start >= clause and not self._person_after(tokens, n.start, m.end)
            for n in scan.of("not_when", complaint)
        ):
            return "not a person at risk"
        # A finding that says it is still so ("2 masih dicari di sungai", "masih di dalam")
        # is not over because something else is ("1 sudah ditemukan", "api sudah padam").
        still_so = any(t in STILL_WORDS for t in tokens[m.start : m.end])
        resolved = [
            r
            for r in scan.of("resolved", complaint)
            if not still_so
            and not _inside(r, m)
            and not (r.start and tokens[r.start - 1] in self._negation_words)
            and not (r.end <= m.start and _contrast_between(tokens, r.end, m.start))
        ]
        if resolved:
            r = resolved[0]
            return f"resolved ({' '.join(tokens[r.start : r.end])})"
        if not finding.certain and scan.of("lower", complaint):
            return "a lesser danger"
        if soft:
            return f"softened ({soft})"
        heard = before(self._hearsay, HYPOTHETICAL_REACH)
        return f"heard ({heard})" if heard else None

    def _person_after(self, tokens: Sequence[str], thing: int, end: int) -> bool:
        """Whether a person is named after the thing at `thing` and before `end`, not as its
        owner or the one spoken to, right after it ("sapi tetangga", "kambing pak",
        "kambing milik warga")."""
        return any(
            tokens[i] in self._people and tokens[i - 1] not in OWNED_BY and i > thing + 1
            for i in range(thing + 1, end)
        )

    def _questions(self, findings: Sequence[Finding]) -> tuple[str, ...]:
        """All questions of the first complaint, the first of each other, at most four."""
        out: list[str] = []
        for n, f in enumerate(findings):
            questions = self.complaints[f.complaint].questions
            for q in questions if n == 0 else questions[:1]:
                if q not in out:
                    out.append(q)
        return tuple(out[:MAX_QUESTIONS])


def one_words(words: Iterable[str], word: Callable[[str], str], what: str) -> frozenset[str]:
    """A list of single words, each read as a report's word is; a phrase is refused."""
    out = set()
    for w in words:
        if len(w.split()) != 1 or "|" in w or "*" in w:
            raise PatternError(f"{what}: {w!r} must be one plain word")
        out.add(word(w))
    return frozenset(out)


def _overlap(a: Match[_Tag], b: Match[_Tag]) -> bool:
    return a.start < b.end and b.start < a.end


STILL_WORDS = frozenset({"masih", "belum", "still"})
WHILE = frozenset({"lagi", "sedang", "sambil", "saat", "ketika", "while"})
# A report that asks for help with what a video shows is about now ("ini videonya, tolong").
HELP = frozenset({"tolong", "bantu", "bantuan", "help", "please"})
SUDDEN = frozenset({"tiba", "mendadak", "suddenly"})
OWNED_BY = frozenset({"milik", "punya", "punyanya", "kepunyaan", "duwe", "gadhahan", "of"})
RUMOUR = "a rumour asked about"
HANDLED = "already handled"
# "... selamat semua, tapi yang nyebrang tidak gerak": what comes after a "but" is not
# undone by what was said before it.
# "masih bisa bicara, cuma sepatah-sepatah": so is an "only".
CONTRAST_WORDS = frozenset(
    {
        "tapi",
        "tetapi",
        "namun",
        "but",
        "however",
        "nanging",
        "ananging",
        "cuma",
        "hanya",
        "only",
        "kecuali",
        "except",
    }
)


def _contrast_between(tokens: Sequence[str], start: int, end: int) -> bool:
    """Whether a "but" stands between word `start` and word `end`."""
    return any(t in CONTRAST_WORDS for t in tokens[start:end])


def _inside(inner: Match[_Tag], outer: Match[_Tag]) -> bool:
    return inner.start >= outer.start and inner.end <= outer.end
