"""Reports as people type them: normalised words, with slang and abbreviations spelled out."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Chat and SMS shorthand of Indonesian and Javanese callers, spelled out before matching.
SHORTHAND: dict[str, str] = {
    "tlg": "tolong",
    "tlng": "tolong",
    "tulung": "tolong",
    "tolongin": "tolong",
    "toloong": "tolong",
    "yg": "yang",
    "dgn": "dengan",
    "dg": "dengan",
    "sy": "saya",
    "sya": "saya",
    "aq": "aku",
    "gk": "tidak",
    "ga": "tidak",
    "gak": "tidak",
    "nggak": "tidak",
    "ngga": "tidak",
    "ndak": "tidak",
    "tdk": "tidak",
    "tak": "tidak",
    "ora": "tidak",
    "blm": "belum",
    "sblm": "sebelum",
    "sblum": "sebelum",
    "sebelom": "sebelum",
    "sdh": "sudah",
    "udh": "sudah",
    "udah": "sudah",
    "wis": "sudah",
    "krn": "karena",
    "karna": "karena",
    "utk": "untuk",
    "dr": "dari",
    "dri": "dari",
    "dkt": "dekat",
    "jln": "jalan",
    "jl": "jalan",
    "jlan": "jalan",
    "dalan": "jalan",
    "kec": "kecamatan",
    "kcmtn": "kecamatan",
    "ds": "desa",
    "kel": "kelurahan",
    "kab": "kabupaten",
    "bgt": "banget",
    "skrg": "sekarang",
    "skrng": "sekarang",
    "saiki": "sekarang",
    "cpt": "cepat",
    "cepet": "cepat",
    "ndang": "cepat",
    "org": "orang",
    "wong": "orang",
    "rmh": "rumah",
    "omah": "rumah",
    "mhn": "mohon",
    "mohon2": "mohon",
    "pak": "bapak",
    "bpk": "bapak",
    "ibuk": "ibu",
    "bu": "ibu",
    "mbah": "nenek",
    "ank": "anak",
    "bocah": "anak",
    "ambulan": "ambulans",
    "ambulance": "ambulans",
    "ambulanc": "ambulans",
    "amblns": "ambulans",
    "pkm": "puskesmas",
    "rs": "rumah sakit",
    "damkar": "pemadam",
    "tkp": "lokasi",
    "lokasine": "lokasi",
    "mks": "terima kasih",
    "makasih": "terima kasih",
    "trims": "terima kasih",
    "suwun": "terima kasih",
    "ning": "di",
    "neng": "di",
    "nang": "di",
    "ing": "di",
    "nggon": "di",
    "nok": "di",
    "nek": "kalau",
    "kalo": "kalau",
    "klo": "kalau",
    "gmn": "bagaimana",
    "gimana": "bagaimana",
    "piye": "bagaimana",
    "bgmn": "bagaimana",
    "knp": "kenapa",
    "ngopo": "kenapa",
    "opo": "apa",
    "apakah": "apa",
    "bs": "bisa",
    "iso": "bisa",
    "isa": "bisa",
    "lg": "lagi",
    "lagi2": "lagi",
    "smpe": "sampai",
    "sampe": "sampai",
    "tp": "tapi",
    "tpi": "tapi",
    "jg": "juga",
    "sm": "sama",
    "ama": "sama",
    "bnyk": "banyak",
    "akeh": "banyak",
    "gede": "besar",
    "gedhe": "besar",
    "rusak2": "rusak",
    "kmrn": "kemarin",
    "wingi": "kemarin",
    "hr": "hari",
    "hri": "hari",
    "mlm": "malam",
    "bengi": "malam",
    "sore2": "sore",
    "tgl": "tanggal",
    "thn": "tahun",
    "bln": "bulan",
    "mggu": "minggu",
    "pdhl": "padahal",
    "min": "admin",
    "mimin": "admin",
    "lur": "",
    "sih": "",
    "dong": "",
    "deh": "",
    "kok": "",
    "lho": "",
    "loh": "",
    "banyu": "air",
    "banyune": "air",
    "setrum": "listrik",
    "uwit": "pohon",
    "wit": "pohon",
    "omahe": "rumah",
    "omahku": "rumah",
    "dalane": "jalan",
    "wkwk": "haha",
    "wkwkwk": "haha",
    "hehe": "haha",
    "hihi": "haha",
}

_REDUPLICATION = re.compile(r"\b([a-z]{3,})2\b")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lower-case ASCII words and digits, one space apart; `alun2` -> `alun alun`."""
    return _NOT_WORD.sub(" ", lowered(text)).strip()


def lowered(text: str) -> str:
    """The text in lower-case ASCII, a reduplication written out and a held key's letters
    single; other characters are kept (`normalise` makes words of it)."""
    if not text.isascii():  # ASCII has nothing to decompose (most reports are ASCII)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    lowered = text.lower()
    if "2" in lowered:  # what a reduplication is written with
        lowered = _REDUPLICATION.sub(r"\1 \1", lowered)
    if _REPEATS.search(lowered):  # rare: looked for before anything is rewritten
        lowered = _REPEATS.sub(r"\1", lowered)  # "tolooong" -> "tolong"
    return lowered


# Possessive and definite endings ("apinya", "genine", "omahku", krama "griyanipun") hide
# the word that matters.
SUFFIXES = ("nipun", "ipun", "nya", "ne", "ku", "mu", "e")


def stem(
    word: str, vocabulary: frozenset[str] | dict[str, str], *, shortest: int = 3
) -> str | None:
    """The word without its ending when that is in `vocabulary`, else None."""
    for suffix in SUFFIXES:
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            if len(base) >= shortest and base in vocabulary:
                return base
    return None


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis saying it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def words(text: str) -> list[str]:
    """The normalised words of a report with shorthand spelled out."""
    return spell_out(normalise(text).split())


def spell_out(tokens: Iterable[str]) -> list[str]:
    """Normalised words with shorthand spelled out ("tlg" -> "tolong", "omahe" -> "rumah")."""
    out: list[str] = []
    for token in tokens:
        out.extend(_spelled(token))
    return out


@lru_cache(maxsize=50_000)
def _spelled(token: str) -> tuple[str, ...]:
    """One word spelled out (none, one or several words)."""
    if token not in SHORTHAND:
        # Shorthand is short: "pake" (pakai) is not "pak" + "-e".
        token = stem(token, SHORTHAND, shortest=4) or token
    return tuple(SHORTHAND.get(token, token).split())
