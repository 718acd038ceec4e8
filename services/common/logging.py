"""structlog set-up: readable on a terminal, JSON lines otherwise; phone numbers masked."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

# One masking rule for logs, the terminal and the command line (re-exported from here).
from services.common.readable import mask_phone, mask_phones_in

__all__ = ["configure_logging", "get_logger", "handling", "mask_phone", "mask_phones_in"]

_PHONE = re.compile(r"\+?\d[\d\- ]{6,}\d")


def _mask_phones(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if not isinstance(value, str):
            continue
        if "phone" in key or _PHONE.fullmatch(value):
            event_dict[key] = mask_phone(value)
        else:
            event_dict[key] = mask_phones_in(value)
    return event_dict


_plain_record_factory = logging.getLogRecordFactory()


def _masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every stdlib record (FastStream, aiokafka, asyncpg, ...) with phone numbers masked
    in its message and its traceback, whichever handler prints it."""
    record = _plain_record_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a library's bad format string is not ours to fix here
        return record
    masked = mask_phones_in(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = mask_phones_in("".join(traceback.format_exception(*record.exc_info)).rstrip())
        # A library's warning about something it retries needs its last line, not a page.
        record.exc_text = text if record.levelno >= logging.ERROR else text.splitlines()[-1]
        record.exc_info = None
    return record


# What the task is handling (the event of a batch): each line written meanwhile gets its
# fields. One context variable set per event costs far less than binding every field, and
# the fields are worked out only when a line is written, which is rare.
_handling: ContextVar[Callable[[], Mapping[str, Any]] | None] = ContextVar(
    "siaga_handling", default=None
)


@contextlib.contextmanager
def handling(describe: Callable[[], Mapping[str, Any]]) -> Iterator[None]:
    """Lines logged inside carry the fields `describe` returns (called only for a line)."""
    token = _handling.set(describe)
    try:
        yield
    finally:
        _handling.reset(token)


def _add_handling(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    describe = _handling.get()
    if describe is not None:
        for key, value in describe().items():
            event_dict.setdefault(key, value)
    return event_dict


def configure_logging(*, level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    as_json = not sys.stderr.isatty() if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_handling,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_phones,  # after format_exc_info, so tracebacks are masked too
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.setLogRecordFactory(_masked_record)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    # aiokafka logs every coordinator hiccup at ERROR/WARNING; keep it to real problems.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)
