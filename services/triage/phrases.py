"""Phrase patterns matched against a report's words: words, prefixes, endings, choices, gaps.

A pattern is written as words separated by spaces, each word one of:

- `tenggelam`: that word;
- `tenggelam*`: a word that starts so (`tenggelamnya`); `*timpa`: one that ends so (`tertimpa`);
- `tidak|belum`: any of the choices, each one word written as above;
- `(tidak gerak|diam saja|pingsan)`: any of these phrases (the pattern stands for one
  pattern per phrase; a group of single words, `(pingsan|semaput)`, is one word's choices);
- `@person`: any word of a named concept (a list of choices kept beside the patterns);
- `..` up to three words of anything, `...` up to seven.

So `@person .. tidak bergerak` finds "anak saya tidak bergerak" and "korban masih tidak
bergerak". Matching is by word, after the report is normalised, so a pattern never matches
inside a word unless it says so with `*`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

SHORT_GAP = 3
LONG_GAP = 7
# Prefixes and endings shorter than this would match too much to be meant.
MIN_AFFIX = 3
MEMO_SIZE = 50_000  # words whose candidate patterns are remembered, per index
# A word that may start this many patterns or more has them looked up by the words they
# need, not tried one by one ("tidak" and "sudah" start dozens of the detector's patterns).
MANY_CANDIDATES = 8


_WORD = re.compile(r"\*?[^\W_]+\*?")


class PatternError(ValueError):
    """A pattern that cannot be read (unknown concept, empty choice, gap at an end)."""


@dataclass(frozen=True)
class Slot:
    """One word of a pattern: the words, beginnings and endings it accepts."""

    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def accepts(self, token: str) -> bool:
        """True when `token` is one of the slot's words or has one of its affixes."""
        if token in self.exact:
            return True
        return bool(self.prefixes and token.startswith(self.prefixes)) or bool(
            self.suffixes and token.endswith(self.suffixes)
        )


@dataclass(frozen=True)
class Pattern(Generic[T]):
    """A parsed pattern with the value it stands for."""

    text: str
    parts: tuple[Slot | int, ...]  # an int is a gap of at most that many words
    value: T

    @property
    def required(self) -> tuple[frozenset[str], ...]:
        """Word sets of which the report must hold one each for the pattern to match
        (its later slots that accept whole words only): checked before matching."""
        return tuple(
            p.exact
            for p in self.parts[1:]
            if isinstance(p, Slot) and not p.prefixes and not p.suffixes
        )

    @cached_property
    def words(self) -> int:
        """How many slots it has (its strength among overlapping matches)."""
        return sum(isinstance(p, Slot) for p in self.parts)


class Match(NamedTuple, Generic[T]):
    """Where a pattern matched: words `start` up to, not including, `end` (a tuple: a report
    makes several, and a tuple is made in a third of a frozen dataclass's time)."""

    start: int
    end: int
    pattern: Pattern[T]

    @property
    def value(self) -> T:
        """What the pattern stands for."""
        return self.pattern.value


def expand(text: str) -> list[str]:
    """The patterns a pattern with `(a b|c)` groups stands for, one per phrase of each group."""
    start = text.find("(")
    if start < 0:
        if ")" in text:
            raise PatternError(f"{text!r}: ')' without '('")
        return [" ".join(text.split())]
    end = text.find(")", start)
    if end < 0:
        raise PatternError(f"{text!r}: '(' without ')'")
    head, body, tail = text[:start], text[start + 1 : end], text[end + 1 :]
    choices = [c.strip() for c in body.split("|")]
    if not all(choices):
        raise PatternError(f"{text!r}: empty choice in a group")
    if not any(" " in c for c in choices):
        # Choices of one word each are one slot ("(a|b)" is "a|b"): a pattern with a few
        # such groups would otherwise stand for hundreds.
        return expand(f"{head} {'|'.join(choices)} {tail}")
    return [e for c in choices for e in expand(f"{head} {c} {tail}")]


def parse(
    text: str,
    *,
    concepts: Mapping[str, Sequence[str]] | None = None,
    word: Callable[[str], str] = lambda w: w,
) -> tuple[Slot | int, ...]:
    """The slots and gaps of one pattern; `word` normalises its plain words as reports are."""
    parts: list[Slot | int] = []
    for piece in text.split():
        if piece in ("..", "..."):
            if not parts or isinstance(parts[-1], int):
                raise PatternError(f"{text!r}: a gap must stand between words")
            parts.append(SHORT_GAP if piece == ".." else LONG_GAP)
            continue
        parts.append(_slot(piece, text, concepts or {}, word))
    if not parts or isinstance(parts[-1], int):
        raise PatternError(f"{text!r}: a pattern must end with a word")
    return tuple(parts)


def _slot(
    piece: str, text: str, concepts: Mapping[str, Sequence[str]], word: Callable[[str], str]
) -> Slot:
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    choices: list[str] = []
    for choice in piece.split("|"):
        if choice.startswith("@"):
            if choice[1:] not in concepts:
                raise PatternError(f"{text!r}: unknown concept {choice}")
            choices.extend(concepts[choice[1:]])
        else:
            choices.append(choice)
    for choice in choices:
        if not choice or choice == "*":
            raise PatternError(f"{text!r}: empty choice")
        if not _WORD.fullmatch(choice):
            # A report's words are letters and digits once normalised: "(paksa )?" or "sakit,"
            # would never match, silently.
            raise PatternError(f"{text!r}: {choice!r} is no word a report can hold")
        if choice.endswith("*"):
            prefixes.append(_affix(choice[:-1], text))
        elif choice.startswith("*"):
            suffixes.append(_affix(choice[1:], text))
        else:
            exact.add(word(choice))
    return Slot(frozenset(exact), tuple(prefixes), tuple(suffixes))


def _affix(affix: str, text: str) -> str:
    if len(affix) < MIN_AFFIX or "*" in affix:
        raise PatternError(f"{text!r}: {affix!r} is too short a beginning or ending")
    return affix


Candidate = tuple[Pattern[T], tuple[frozenset[str], ...]]


@dataclass(frozen=True)
class _Starting(Generic[T]):
    """The patterns that may start at one word, each with the word sets a report must hold one
    word of (its `required`); when there are many, indexed by the words of one of those sets
    (the smallest), so that a report tries only those its words make possible."""

    candidates: tuple[Candidate[T], ...]
    keys: frozenset[str] | None = None  # the indexing words; None: every candidate is tried
    by_key: dict[str, tuple[int, ...]] = field(default_factory=dict)
    alone: dict[str, tuple[Candidate[T], ...]] = field(default_factory=dict)  # each key's
    free: frozenset[int] = frozenset()  # candidates that need no other word

    @classmethod
    def of(cls, patterns: Sequence[Pattern[T]]) -> _Starting[T]:
        """The candidates of one word, indexed when they are many."""
        candidates = tuple((p, p.required) for p in patterns)
        if len(candidates) < MANY_CANDIDATES:
            return cls(candidates)
        by_key: dict[str, list[int]] = defaultdict(list)
        free = []
        for i, (_, required) in enumerate(candidates):
            if not required:
                free.append(i)
                continue
            for word in min(required, key=len):
                by_key[word].append(i)
        return cls(
            candidates,
            frozenset(by_key),
            {w: tuple(at) for w, at in by_key.items()},
            {w: tuple(candidates[i] for i in at) for w, at in by_key.items()},
            frozenset(free),
        )

    def possible(self, present: Set[str]) -> Sequence[Candidate[T]]:
        """The candidates whose indexing words a report holds, in their order."""
        hits = self.keys.intersection(present) if self.keys is not None else frozenset()
        if not self.free and len(hits) <= 1:
            # The usual case: one indexing word at most, its candidates already in order.
            return self.alone[next(iter(hits))] if hits else ()
        by_key = self.by_key
        chosen = self.free.union(*[by_key[w] for w in hits])
        return [self.candidates[i] for i in sorted(chosen)]


class PhraseIndex(Generic[T]):
    """Many patterns, found together in one pass over a report's words."""

    def __init__(
        self,
        patterns: Iterable[tuple[str, T]],
        *,
        concepts: Mapping[str, Sequence[str]] | None = None,
        word: Callable[[str], str] = lambda w: w,
    ) -> None:
        self.patterns = [
            Pattern(t, parse(e, concepts=concepts, word=word), v)
            for t, v in patterns
            for e in expand(t)
        ]
        # Each pattern is tried only where its first word stands: indexed by that word, or by
        # the beginning or ending it asks for.
        self._by_word: dict[str, list[Pattern[T]]] = defaultdict(list)
        self._by_prefix: dict[str, list[Pattern[T]]] = defaultdict(list)
        self._by_suffix: dict[str, list[Pattern[T]]] = defaultdict(list)
        for pattern in self.patterns:
            first = pattern.parts[0]
            assert isinstance(first, Slot)
            for w in first.exact:
                self._by_word[w].append(pattern)
            for p in first.prefixes:
                self._by_prefix[p].append(pattern)
            for s in first.suffixes:
                self._by_suffix[s].append(pattern)
        self._affix_lengths = sorted({len(a) for a in (*self._by_prefix, *self._by_suffix)})
        # Reports repeat the same words: the patterns that may start at a word, once each,
        # with the words each needs elsewhere in the report.
        self._starting: dict[str, _Starting[T]] = {}

    def vocabulary(self) -> set[str]:
        """Every plain word the patterns name (for the speller to correct towards)."""
        return {w for p in self.patterns for s in p.parts if isinstance(s, Slot) for w in s.exact}

    def affixes(self) -> tuple[set[str], set[str]]:
        """Every beginning and every ending the patterns ask for (`tersengal*`, `*timpa`):
        a word that has one is spelled as a pattern wants it, not a slip to correct."""
        prefixes: set[str] = set()
        suffixes: set[str] = set()
        for p in self.patterns:
            for s in p.parts:
                if isinstance(s, Slot):
                    prefixes.update(s.prefixes)
                    suffixes.update(s.suffixes)
        return prefixes, suffixes

    def word_pairs(self) -> set[str]:
        """Two words a pattern names side by side ("tidak sadar"), run together."""
        out = set()
        for pattern in self.patterns:
            for a, b in zip(pattern.parts, pattern.parts[1:], strict=False):
                if isinstance(a, Slot) and isinstance(b, Slot):
                    out |= {x + y for x in a.exact for y in b.exact}
        return out

    def find(self, tokens: Sequence[str], present: Set[str] | None = None) -> list[Match[T]]:
        """Every match of every pattern, the shortest span for each start, in word order
        (`present`: the set of `tokens`, when the caller has it already)."""
        found: list[Match[T]] = []
        if present is None:
            present = set(tokens)
        starting = self._starting
        for start, token in enumerate(tokens):
            entry = starting.get(token)
            if entry is None:
                entry = self._starting_at(token)
            candidates = entry.candidates if entry.keys is None else entry.possible(present)
            for pattern, required in candidates:
                for words in required:
                    if words.isdisjoint(present):
                        break
                else:
                    parts = pattern.parts
                    end = start + 1 if len(parts) == 1 else _match(parts, 1, tokens, start + 1)
                    if end is not None:
                        found.append(Match(start, end, pattern))
        return found

    def find_longest(
        self, tokens: Sequence[str], present: Set[str] | None = None
    ) -> list[Match[T]]:
        """Matches that do not overlap, the ones of most words first, in word order."""
        return longest_first(self.find(tokens, present), len(tokens))

    def _starting_at(self, token: str) -> _Starting[T]:
        known = self._starting.get(token)
        if known is None:
            if len(self._starting) >= MEMO_SIZE:
                self._starting.clear()
            known = self._starting[token] = _Starting.of(self._candidates(token))
        return known

    def _candidates(self, token: str) -> list[Pattern[T]]:
        candidates = list(self._by_word.get(token, ()))
        for size in self._affix_lengths:
            if size > len(token):
                break
            candidates += self._by_prefix.get(token[:size], ())
            candidates += self._by_suffix.get(token[-size:], ())
        if len(candidates) > 1:  # a pattern indexed under two of the token's affixes
            candidates = list({id(p): p for p in candidates}.values())
        return candidates


def longest_first(found: Sequence[Match[T]], length: int) -> list[Match[T]]:
    """Of `found` (over `length` words), those that do not overlap, the ones of most words
    first, in word order."""
    if not found:
        return []
    taken = [False] * length
    chosen: list[Match[T]] = []
    for m in sorted(found, key=lambda m: (-m.pattern.words, m.start - m.end)):
        if not any(taken[m.start : m.end]):
            taken[m.start : m.end] = [True] * (m.end - m.start)
            chosen.append(m)
    return sorted(chosen, key=lambda m: m.start)


def _match(parts: Sequence[Slot | int], i: int, tokens: Sequence[str], at: int) -> int | None:
    """The end of the shortest match of `parts[i:]` starting at word `at`, or None (the
    first slot was matched where the candidate was found)."""
    count = len(parts)
    while i < count:
        part = parts[i]
        if isinstance(part, int):
            for skip in range(part + 1):
                end = _match(parts, i + 1, tokens, at + skip)
                if end is not None:
                    return end
            return None
        if at >= len(tokens) or not part.accepts(tokens[at]):
            return None
        i += 1
        at += 1
    return at
