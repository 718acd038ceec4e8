"""What the command line tells apart: a value the user gave that cannot be used (exit code
2, like a bad argument) from what the system could not do (exit code 1), and a report kept
safe in the spool but not delivered yet (exit code 3)."""

from __future__ import annotations


class BadInput(ValueError):
    """A value the user gave that cannot be used: one line on stderr, exit code 2."""


SPOOLED = 3
"""Exit code of `siaga report` when the report is only in the local spool: it is safe there
and goes out by itself once the broker answers, but nobody has received it yet."""
