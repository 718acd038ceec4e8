"""How values are shown to people: phone numbers masked, ETAs in whole minutes, times
in Western Indonesian Time.

Imports nothing heavy, so the command line, the monitor and the log can all use it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# Inside longer text (messages, reasons, report texts, JSON): E.164 numbers and Indonesian
# mobile numbers (08..., 628...); dates and offsets have separators, so they do not match.
_PHONE_IN_TEXT = re.compile(r"(?<![\w+])(?:\+\d{8,15}|(?:62|0)8\d{7,12})(?!\d)")
# A mobile number as people type it in a report: 0812-3456-7890, +62 812 3456 7890.
_GROUPED_PHONE = re.compile(r"(?<![\w+])(?:\+62|62|0)[ -]?8\d{1,3}(?:[ .-]\d{2,8}){1,3}(?!\w)")
_NOT_DIGIT = re.compile(r"[^\d+]")


def mask_phone(value: str) -> str:
    """Keep the country prefix and last two digits of a phone number: +6281******90
    (enough to see a caller again, not to call them)."""
    digits = value.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:5] + "*" * (len(digits) - 7) + digits[-2:]


def _mask_grouped(match: re.Match[str]) -> str:
    digits = _NOT_DIGIT.sub("", match.group())
    # 9 to 15 digits is a phone number; fewer is a time, a count or a house number.
    return mask_phone(digits) if 9 <= len(digits.lstrip("+")) <= 15 else match.group()


def mask_phones_in(text: str) -> str:
    """Mask every phone number inside a longer text, however it is written."""
    if not any(c.isdigit() for c in text):
        return text
    text = _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)
    return _GROUPED_PHONE.sub(_mask_grouped, text)


def eta_minutes(seconds: int) -> int:
    """An ETA as people are told it: whole minutes, and never 0 for a unit still on its
    way (the monitor, the log, the crew's tablet and `incident show` agree)."""
    return max(1, seconds // 60)


# Western Indonesian Time (Java, Sumatra): UTC+7 all year, Indonesia has no summer time.
WIB = timezone(timedelta(hours=7), "WIB")


def wib_time(at: datetime, *, seconds: bool = False) -> str:
    """A moment as the command centre's clock says it: `14:05 WIB` (`14:05:09 WIB`)."""
    return at.astimezone(WIB).strftime("%H:%M:%S WIB" if seconds else "%H:%M WIB")
