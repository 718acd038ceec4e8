"""A report as triage reads it: emoji and hashtags spelled out, shorthand and Javanese mapped to
Indonesian words, typos and words split or run together by speech-to-text mended."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from services.common.text import SHORTHAND, lowered, normalise, spell_out, stem

# Clause ends: negation and hedges reach back only to the start of their clause.
_CLAUSE_END = re.compile(r"[.!?;,:\n()\[\]]+|\s-\s|\s/\s")
_CLAUSE_MARK = "qqclauseqq"  # letters only, so normalising keeps it
_SPACED_MARK = f" {_CLAUSE_MARK} "
# A report's words and its clause ends in one pass over its lowered ASCII text, a clause end
# found as an empty word (none starts with a letter or a digit, so none is cut from a word).
_WORDS_AND_ENDS = re.compile(r"([a-z0-9]+)|" + _CLAUSE_END.pattern)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TAGS = re.compile(r"[#@](\w+)")
MEMO_SIZE = 50_000  # words whose reading is remembered
# A word run together from two ("tidaksadar") is split when a pattern names the two.
MIN_PART = 2


@dataclass(frozen=True)
class Reading:
    """What triage reads in one report."""

    text: str  # as received
    folded: str  # lower-case ASCII words, emoji spelled out (what the model sees)
    tokens: tuple[str, ...]  # Indonesian words after mapping and correction (what rules see)
    clause_starts: frozenset[int]  # token positions where a new clause begins
    # The set of its tokens, for the pattern indexes' quick checks (made with the tokens: a
    # cached property takes a lock the first time it is read).
    words: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.words and self.tokens:
            object.__setattr__(self, "words", frozenset(self.tokens))

    def clause_start(self, at: int) -> int:
        """The first token of the clause holding token `at`."""
        while at > 0 and at not in self.clause_starts:
            at -= 1
        return at


class Reader:
    """Turns report text into a `Reading`: the same steps for reports and for patterns."""

    def __init__(
        self,
        *,
        language: Mapping[str, str],
        emoji: Mapping[str, str],
        common: Iterable[str] = (),
        doubled: Iterable[str] = (),
    ) -> None:
        self._doubled = frozenset(doubled)
        self._language = dict(language)
        self._emoji = dict(emoji)
        # Emoji are not ASCII: an ASCII report (most are) has none to spell out.
        self._ascii_emoji = any(symbol.isascii() for symbol in self._emoji)
        self._common = frozenset(common)
        self._lemmas: dict[str, str] = {}
        self._lemma_words: dict[str, tuple[str, ...]] = {}
        self._run_together: frozenset[str] = frozenset()
        self.learn(())

    def learn(
        self,
        vocabulary: Iterable[str],
        *,
        run_together: Iterable[str] = (),
        affixes: tuple[Iterable[str], Iterable[str]] = ((), ()),
    ) -> None:
        """The words that matter (the patterns' words): typos are corrected towards them; the
        pairs of them that speech-to-text may run together ("tidaksadar"); and the beginnings
        and endings patterns ask for, whose words are never corrected ("tersengal")."""
        self._vocabulary = frozenset(vocabulary)
        self._run_together = frozenset(run_together)
        prefixes, suffixes = affixes
        self._speller = Speller(
            self._vocabulary, known=self._common, prefixes=prefixes, suffixes=suffixes
        )
        self._known = self._speller.known | frozenset(self._language) | frozenset(SHORTHAND)

    def lemma(self, word: str) -> str:
        """One normalised word as the Indonesian word(s) it stands for."""
        mapped = self._language.get(word)
        if mapped is None:
            mapped = self._lemmas.get(word)
            if mapped is None:
                if len(self._lemmas) >= MEMO_SIZE:
                    self._lemmas.clear()
                base = stem(word, self._language)
                if base is not None:
                    mapped = self._language[base]
                else:
                    # A key held a moment too long ("lemmes", "atass", "sekaratt"): the word
                    # with its doubled letters single, when that is a word we know.
                    single = _DOUBLED.sub(r"\1", word)
                    known = single != word and word not in self._known and single in self._known
                    mapped = self.lemma(single) if known else word
                self._lemmas[word] = mapped
        return mapped

    def words_of(self, word: str) -> tuple[str, ...]:
        """The words `lemma` gives for one spoken word, remembered (reports repeat words)."""
        words = self._lemma_words.get(word)
        if words is None:
            if len(self._lemma_words) >= MEMO_SIZE:
                self._lemma_words.clear()
            words = self._lemma_words[word] = tuple(self.lemma(word).split())
        return words

    def pattern_word(self, word: str) -> str:
        """A plain word of a pattern, spelled as a report's word would be after reading."""
        spelled = SHORTHAND.get(word, word)
        return " ".join(self.lemma(w) for w in spelled.split()) if spelled else spelled

    def read(self, text: str) -> Reading:
        """The report's folded text, its words and where its clauses start."""
        spelled = text
        if "#" in text or "@" in text:
            spelled = _TAGS.sub(lambda m: " " + _CAMEL.sub(" ", m.group(1)) + " ", text)
        if self._ascii_emoji or not spelled.isascii():
            for symbol, meaning in self._emoji.items():
                if symbol in spelled:
                    spelled = spelled.replace(symbol, f" {meaning} ")
        marked = _words_and_ends(spelled)
        tokens: list[str] = []
        starts = {0}
        clause: list[str] = []
        for word in [*marked, ""]:
            if word:
                clause.append(word)
                continue
            said = self._mend(spell_out(clause))
            clause = []
            if said:
                starts.add(len(tokens))
                self._lemmas_of(said, tokens)
        corrected = tuple(self._speller.correct_all(tokens))
        return Reading(
            text=text,
            folded=" ".join([w for w in marked if w]),
            tokens=corrected,
            clause_starts=frozenset([s for s in starts if s < len(corrected)]),
            words=frozenset(corrected),
        )

    def _lemmas_of(self, said: list[str], tokens: list[str]) -> None:
        """One clause's spoken words, as the words they stand for, added to `tokens`."""
        doubled_words = self._doubled
        remembered = self._lemma_words
        last = len(said) - 1
        for n, spoken in enumerate(said):
            if spoken in doubled_words and (
                (n > 0 and said[n - 1] == spoken) or (n < last and said[n + 1] == spoken)
            ):
                tokens.append(spoken)  # "tiba-tiba" (suddenly) is no fall
                continue
            words = remembered.get(spoken)
            tokens.extend(self.words_of(spoken) if words is None else words)

    def _mend(self, said: list[str]) -> list[str]:
        """Words split ("kece lakaan") or run together ("tidaksadar") by speech-to-text."""
        out: list[str] = []
        i = 0
        while i < len(said):
            word = said[i]
            if i + 1 < len(said) and not (word in self._known and said[i + 1] in self._known):
                joined = word + said[i + 1]
                if joined in self._vocabulary or self.lemma(joined) in self._vocabulary:
                    out.append(joined)
                    i += 2
                    continue
            if word not in self._known and word in self._run_together:
                out.extend(self._split(word))
            else:
                out.append(word)
            i += 1
        return out

    def _split(self, word: str) -> list[str]:
        for cut in range(MIN_PART, len(word) - MIN_PART + 1):
            head, tail = word[:cut], word[cut:]
            if head in self._known and tail in self._known:
                return [head, tail]
        return [word]


def _words_and_ends(text: str) -> list[str]:
    """The normalised words of a report, with an empty word where a clause ends."""
    if text.isascii():
        folded = lowered(text)
        if _CLAUSE_MARK not in folded:
            return _WORDS_AND_ENDS.findall(folded)
    # As before, clause ends marked before folding: folding makes punctuation of other
    # characters (a full-width comma becomes ","), which ends no clause; and a report that
    # spells the mark itself is read as it always was.
    marked = normalise(_CLAUSE_END.sub(_SPACED_MARK, text)).split()
    return ["" if word == _CLAUSE_MARK else word for word in marked]


MIN_SKELETON = 3
_DOUBLED = re.compile(r"([a-z])\1+")
MIN_SKELETON_WORD = 5
_VOWELS = str.maketrans("", "", "aeiou")


def skeleton(word: str) -> str:
    """The first letter and the consonants after it ("kebakaran" -> "kbkrn")."""
    return word[:1] + word[1:].translate(_VOWELS)


def _dropped_vowels(short: str, full: str) -> bool:
    """Whether `short` is `full` with some vowels left out."""
    letters = iter(full)
    return all(c in letters for c in short)


def slips_allowed(word: str) -> int:
    """How many typing slips a word may carry and still be read as a keyword: none below six
    letters ("maret" is not "macet"), one up to eleven, two beyond."""
    if len(word) < 6:
        return 0
    return 1 if len(word) < 12 else 2


class Speller:
    """Corrects typos towards a vocabulary of words that matter, leaving known words alone."""

    # Reports repeat the same few thousand words (and the same slips): a word is looked up
    # once, not fuzzily matched against the vocabulary each time. Bounded, for a long run.
    MEMO_SIZE = 50_000

    def __init__(
        self,
        targets: Iterable[str],
        *,
        known: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        suffixes: Iterable[str] = (),
    ) -> None:
        self.targets = sorted({t for t in targets if t})
        self._target_set = frozenset(self.targets)
        self.known = frozenset(known) | self._target_set
        # A word a pattern accepts by its beginning or ending is spelled as it wants.
        self._prefixes = tuple(sorted(set(prefixes)))
        self._suffixes = tuple(sorted(set(suffixes)))
        self._memo: dict[str, str] = {}
        # SMS drops vowels ("kbkaran", "npas"): a word is read by its consonants when they
        # are those of one keyword alone.
        by_skeleton: dict[str, set[str]] = {}
        for t in self.targets:
            if len(t) >= MIN_SKELETON_WORD:
                by_skeleton.setdefault(skeleton(t), set()).add(t)
        self._skeletons = {k: next(iter(v)) for k, v in by_skeleton.items() if len(v) == 1}

    def correct(self, word: str) -> str:
        """The vocabulary word `word` was meant to be, or `word` itself."""
        meant = self._memo.get(word)
        if meant is None:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            meant = self._memo[word] = self._corrected(word)
        return meant

    def _corrected(self, word: str) -> str:
        if word in self._target_set or word.isdigit():
            return word
        # An ending hides the keyword even in a word spelled right ("bibirnya" is "bibir").
        base = stem(word, self._target_set)
        if base is not None:
            return base
        if word in self.known:
            return word
        if (self._prefixes and word.startswith(self._prefixes)) or (
            self._suffixes and word.endswith(self._suffixes)
        ):
            return word
        return self._match(word)

    def _match(self, word: str) -> str:
        bare = skeleton(word)
        if len(bare) >= MIN_SKELETON and len(word) >= 4 and bare in self._skeletons:
            target = self._skeletons[bare]
            if len(word) < len(target) and _dropped_vowels(word, target):
                return target
        limit = slips_allowed(word)
        if limit == 0:
            return word
        found = process.extractOne(
            word, self.targets, scorer=Levenshtein.distance, score_cutoff=limit
        )
        if found is None:
            return word
        target = found[0]
        # A slip keeps the first letter and roughly the length; anything else is another word.
        if target[0] != word[0] or abs(len(target) - len(word)) > limit:
            return word
        return str(target)

    def correct_all(self, tokens: Iterable[str]) -> list[str]:
        """Every word corrected."""
        memo = self._memo
        out = []
        for token in tokens:
            meant = memo.get(token)
            out.append(self.correct(token) if meant is None else meant)
        return out
