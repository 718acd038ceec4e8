"""Logs never carry a full phone number, whoever logs: our code, libraries, tracebacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from services.common.logging import configure_logging, get_logger, mask_phones_in

PHONE = "+6281234567890"


@pytest.fixture(autouse=True)
def _suite_logging() -> Iterator[None]:
    """These tests point structlog at a captured stream that is closed after them; the
    suite's configuration comes back, or the next test to log writes to a closed file."""
    yield
    configure_logging(level="WARNING", json=True)


def test_phone_numbers_inside_text_are_masked_and_dates_are_not() -> None:
    text = f"caller {PHONE} and 081234567890 and 6281234567890 at 2026-11-23 10:00:00+07:00"
    masked = mask_phones_in(text)
    assert PHONE not in masked and "081234567890" not in masked and "6281234567890" not in masked
    assert "+6281*******90" in masked and "2026-11-23 10:00:00+07:00" in masked


def test_structlog_masks_fields_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", json=True)
    log = get_logger("test")
    try:
        raise ValueError(f"duplicate key (phone)=({PHONE})")
    except ValueError:
        log.exception("handler failed", reason=f"bad report from {PHONE}", caller_phone=PHONE)
    err = capsys.readouterr().err
    assert "handler failed" in err and "ValueError" in err
    assert PHONE not in err and "6281234567890" not in err


def test_library_logs_are_masked_whichever_handler_prints_them() -> None:
    configure_logging(level="INFO", json=True)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    library = logging.getLogger("faststream.test")
    library.addHandler(handler)
    try:
        library.error("send failed for key %s", PHONE)
        try:
            raise ConnectionError(f"peer {PHONE} went away")
        except ConnectionError:
            library.warning("retrying", exc_info=True)
    finally:
        library.removeHandler(handler)
    text = out.getvalue()
    assert "send failed for key +6281" in text and "ConnectionError" in text
    assert PHONE not in text


def test_lines_written_while_an_event_is_handled_carry_its_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from services.common.logging import handling

    configure_logging(level="INFO", json=True)
    log = get_logger("test")
    asked = []

    def about() -> dict[str, str]:
        asked.append(1)
        return {"event_id": "e-1", "incident_id": "i-1"}

    with handling(about):
        log.info("refused", reason="late report")
        log.info("own field wins", event_id="e-2")
    log.info("after")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(x["event"], x.get("event_id"), x.get("incident_id")) for x in lines] == [
        ("refused", "e-1", "i-1"),
        ("own field wins", "e-2", "i-1"),
        ("after", None, None),
    ]
    assert len(asked) == 2  # worked out per line written, not per event
