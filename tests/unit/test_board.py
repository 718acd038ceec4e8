"""The unit board gives the same row whatever order a unit's events arrive in."""

from __future__ import annotations

import dataclasses
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta

from services.projector.board import RANK, BoardRow, UnitChange, apply, fold

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _replay(changes: list[UnitChange]) -> BoardRow:
    row: BoardRow | None = None
    for change in changes:
        row = apply(row, change)
    assert row is not None
    return row


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_assignment_gives_one_row_in_any_order_even_with_a_slow_device_clock() -> None:
    x = uuid.uuid4()
    changes = [
        UnitChange("dispatched", _at(10), x),
        UnitChange("acknowledged", _at(9), x),  # the device's clock is behind the dispatcher's
        UnitChange("en_route", _at(20), x),
        UnitChange("available", _at(60), x),
    ]
    rows = {_replay(list(order)) for order in itertools.permutations(changes)}
    assert len(rows) == 1
    (row,) = rows
    assert row.status == "available" and row.incident_id is None


def test_live_order_shows_progress_despite_the_slow_clock() -> None:
    x = uuid.uuid4()
    row = _replay([UnitChange("dispatched", _at(10), x), UnitChange("acknowledged", _at(9), x)])
    assert row.status == "acknowledged" and row.incident_id == x


def test_two_assignments_in_any_order_end_on_the_second() -> None:
    x, y = uuid.uuid4(), uuid.uuid4()
    changes = [
        UnitChange("dispatched", _at(0), x),
        UnitChange("on_scene", _at(30), x),
        UnitChange("available", _at(100), x),
        UnitChange("dispatched", _at(200), y),
        UnitChange("acknowledged", _at(205), y),
    ]
    rows = {_replay(list(order)) for order in itertools.permutations(changes)}
    assert rows == {BoardRow("acknowledged", _at(205), y, _at(200), x, _at(100))}


def test_a_late_report_after_clearing_gives_one_row_whatever_the_topic_interleaving() -> None:
    # The unit's own reports come in order on one topic; the order comes from another
    # topic and may land anywhere among them (live) or after all of them (rebuild).
    x = uuid.uuid4()
    reports = [
        UnitChange("acknowledged", _at(11), x),
        UnitChange("en_route", _at(12), x),
        UnitChange("on_scene", _at(30), x),
        UnitChange("available", _at(60), x),
        UnitChange("en_route", _at(70), x),  # late, refused by the tracker, still on the log
    ]
    order = UnitChange("dispatched", _at(10), x)
    cancelled = UnitChange("cancelled", _at(65), x)  # a cancellation, also from the orders topic
    rows = set()
    for i in range(len(reports) + 1):
        for j in range(i, len(reports) + 1):
            merged = [*reports[:i], order, *reports[i:j], cancelled, *reports[j:]]
            rows.add(_replay(merged))
            rows.add(_replay([*reports[:i], cancelled, *reports[i:j], order, *reports[j:]]))
    assert len(rows) == 1, rows


def test_late_events_of_a_cleared_assignment_do_not_reshape_it() -> None:
    x = uuid.uuid4()
    changes = [
        UnitChange("dispatched", _at(10), x),
        UnitChange("on_scene", _at(30), x),
        UnitChange("available", _at(60), x),
        UnitChange("acknowledged", _at(20), x),
    ]
    rows = {_replay(list(order)) for order in itertools.permutations(changes)}
    assert len(rows) == 1
    (row,) = rows
    assert row.status == "available" and row.incident_id is None and row.cleared_incident_id == x


def _key(change: UnitChange, ident: int) -> tuple[datetime, int, int]:
    return (change.at, RANK.get(change.status, len(RANK)), ident)


def _arrive(order: list[tuple[int, UnitChange]]) -> BoardRow:
    """What the repository does: keep changes sorted with the row after each, fold a late
    one in from the row before it."""
    kept: list[tuple[tuple[datetime, int, int], UnitChange, BoardRow]] = []
    for ident, change in order:
        key = _key(change, ident)
        at = sum(1 for k, _, _ in kept if k < key)
        start = kept[at - 1][2] if at else None
        later = [(key, change)] + [(k, c) for k, c, _ in kept[at:]]
        rows = fold(start, [c for _, c in later])
        kept = kept[:at] + [(k, c, r) for (k, c), r in zip(later, rows, strict=True)]
    return kept[-1][2]


def test_the_board_is_the_same_in_any_order_of_arrival_for_random_histories() -> None:
    for trial in range(400):
        rng = random.Random(trial)
        t, reports, orders = 0, [], []
        for incident in (uuid.uuid4(), uuid.uuid4()):
            t += rng.randint(1, 50)
            orders.append(UnitChange("dispatched", _at(t), incident))
            for step in ["acknowledged", "en_route", "on_scene", "available"][: rng.randint(1, 4)]:
                t += rng.randint(-2, 20)  # the device's clock may be behind
                reports.append(UnitChange(step, _at(t), incident))
            if rng.random() < 0.3:
                t += rng.randint(1, 10)
                orders.append(UnitChange("cancelled", _at(t), incident))
            if rng.random() < 0.3:  # a late report after the unit cleared
                t += rng.randint(1, 10)
                reports.append(UnitChange("en_route", _at(t), incident))
        numbered = list(enumerate(reports + orders))
        mine, theirs = numbered[: len(reports)], numbered[len(reports) :]
        rows = set()
        for k in range(12):  # each topic in order, interleaved at random
            pick = random.Random(k)
            a, b, merged = list(mine), list(theirs), []
            while a or b:
                merged.append(a.pop(0) if a and (not b or pick.random() < 0.5) else b.pop(0))
            rows.add(_arrive(merged))
        assert len(rows) == 1, (trial, rows)


def test_a_board_row_gives_its_columns_in_field_order() -> None:
    row = BoardRow("on_scene", T0, uuid.uuid4(), T0, uuid.uuid4(), T0)
    assert row.columns() == dataclasses.astuple(row)
    assert [f.name for f in dataclasses.fields(BoardRow)] == [
        "status",
        "status_at",
        "incident_id",
        "assigned_at",
        "cleared_incident_id",
        "cleared_at",
    ]
