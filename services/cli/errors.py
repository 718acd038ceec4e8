"""What the command line tells apart: a value the user gave that cannot be used (exit code
2, like a bad argument) from what the system could not do (exit code 1)."""

from __future__ import annotations


class BadInput(ValueError):
    """A value the user gave that cannot be used: one line on stderr, exit code 2."""
