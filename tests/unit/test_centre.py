"""The command-centre page's pure parts: the map's outlines, the day's counters, the change
watch and feed, who may do what, what an agency sees, and the board cache."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.commands import AnswerWorkOrderV1, ReviewTriageV1
from schemas.vocabulary import Priority
from services.common.datapack import BUILTIN_PACK, DataFileError, open_pack
from services.gateway.centre import sse
from services.gateway.centre_actions import (
    MAY,
    Action,
    BadAction,
    actions_of,
    command_for,
    same_agency,
)
from services.gateway.centre_board import Board, BoardCache, masked_text, visible_to
from services.gateway.centre_feed import ChangeFeed, ChangeWatch, Look
from services.gateway.centre_reads import (
    ComplaintFact,
    DayCounters,
    DayFacts,
    MapIncident,
    MapUnit,
    P1Fact,
    day_counters,
    day_start,
    percentile,
)
from services.gateway.outlines import (
    delta_decode,
    delta_encode,
    load_outlines,
    outline_document,
    quantize,
    thin_ring,
)
from services.gateway.people import Person, Role
from services.projector.queries import QueuedWorkOrder, TimelineEntry

# ---------------------------------------------------------------- the map's outlines


def test_a_ring_loses_its_closing_point_repeats_and_points_within_a_step() -> None:
    ring = [(0, 0), (0, 0), (1, 0), (10, 0), (10, 10), (9, 10), (0, 10), (0, 1), (0, 0)]
    assert thin_ring(ring, min_step=2) == [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert thin_ring(ring, min_step=1) == [
        (0, 0),
        (1, 0),
        (10, 0),
        (10, 10),
        (9, 10),
        (0, 10),
        (0, 1),
    ]


def test_a_ring_too_small_to_thin_keeps_its_points_and_a_degenerate_one_is_dropped() -> None:
    tiny = [(0, 0), (1, 0), (1, 1), (0, 0)]
    assert thin_ring(tiny, min_step=5) == [(0, 0), (1, 0), (1, 1)]
    assert thin_ring([(0, 0), (1, 1), (0, 0)], min_step=1) == []
    assert thin_ring([(3, 3), (3, 3), (3, 3)], min_step=1) == []


def test_rings_are_written_as_steps_and_read_back() -> None:
    ring = [(1096733, -71958), (1096740, -71950), (1096700, -71990)]
    flat = delta_encode(ring)
    assert flat == [1096733, -71958, 7, 8, -40, -40]
    assert delta_decode(flat) == ring
    assert quantize([(109.87654, -7.01236)]) == [(1098765, -70124)]


def square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def feature(level: str, code: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"kode": code, "nama": f"Area {code}", "level": level, **props},
        "geometry": geometry,
    }


def test_kecamatan_and_regency_are_drawn_from_their_desa_and_what_cannot_be_is_skipped() -> None:
    polygon = {"type": "Polygon"}
    collection = {
        "features": [
            feature("desa", "1.1.2001", {**polygon, "coordinates": [square(110, -7, 0.01)]},
                    parent="1.1"),
            feature("desa", "1.1.2002", {**polygon, "coordinates": [square(110.01, -7, 0.01)]},
                    parent="1.1"),
            # The pack's own coarse outline of 1.1 is not drawn: its desa's union is.
            feature("kecamatan", "1.1", {**polygon, "coordinates": [square(109.9, -7.1, 0.3)]},
                    parent="1", centroid_lat=-6.995, centroid_lon=110.01),
            # A kecamatan without desa in the file keeps its own (here two islands); its
            # official centre lies outside it, so its name goes inside instead.
            feature("kecamatan", "1.2", {"type": "MultiPolygon", "coordinates": [
                [square(110.1, -7, 0.01)], [square(110.2, -7, 0.01)]]},
                    parent="1", centroid_lat=-6.0, centroid_lon=111.0),
            feature("kabupaten", "1", {**polygon, "coordinates": [square(100, -8, 5)]}),
            feature("provinsi", "0", {**polygon, "coordinates": [square(0, 0, 1)]}),
            feature("desa", "1.1.2003", {"type": "Point", "coordinates": [110, -7]}),
            feature("desa", "", {**polygon, "coordinates": [square(110, -7, 0.01)]}),
        ]
    }  # fmt: skip
    doc = outline_document(collection)
    assert [(a["level"], a["code"]) for a in doc["areas"]] == [
        ("kabupaten", "1"),
        ("kecamatan", "1.1"),
        ("kecamatan", "1.2"),
        ("desa", "1.1.2001"),
        ("desa", "1.1.2002"),
    ]
    regency, joined, islands = doc["areas"][:3]
    (outline,) = joined["rings"]
    assert set(delta_decode(outline)) == {
        (1100000, -70000), (1100200, -70000), (1100200, -69900), (1100000, -69900),
    }  # fmt: skip
    assert joined["centre"] == [1100100, -69950] and joined["parent"] == "1"
    assert len(islands["rings"]) == 2
    x, y = islands["centre"]
    assert (1101000 <= x <= 1101100 or 1102000 <= x <= 1102100) and -70000 <= y <= -69900
    assert len(regency["rings"]) == 3  # the union of its kecamatan: three pieces
    assert doc["scale"] == 10_000 and doc["bbox"] == [1100000, -70000, 1102100, -69900]


def test_batangs_outlines_are_all_there_and_small() -> None:
    outlines = load_outlines(open_pack(BUILTIN_PACK, builtin=True))
    doc = json.loads(outlines.body)
    levels = [a["level"] for a in doc["areas"]]
    assert levels.count("kecamatan") == 15 and levels.count("kabupaten") == 1
    assert levels.count("desa") + levels.count("kelurahan") == 248
    source = BUILTIN_PACK / "regions" / "batang_boundaries.geojson"
    assert len(outlines.body) < source.stat().st_size / 4  # a wall screen loads it at once
    assert len(outlines.gzipped) < len(outlines.body) / 2
    # Every point of a desa drawn is a point of the pack's outline, on the 11 m grid.
    original = json.loads(source.read_text())
    silurah = next(f for f in original["features"] if f["properties"]["kode"] == "33.25.01.2001")
    grid = set(quantize(silurah["geometry"]["coordinates"][0]))
    (drawn,) = [a for a in doc["areas"] if a["code"] == "33.25.01.2001"]
    assert set(delta_decode(drawn["rings"][0])) <= grid
    assert outlines.etag.startswith('"') and len(outlines.etag) == 34


def test_a_boundaries_file_that_is_not_geojson_stops_the_gateway_saying_which(
    tmp_path: Path,
) -> None:
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "x_regions.csv").write_text("code,level,name,parent_code,lat,lon\n")
    (tmp_path / "regions" / "x.geojson").write_text("{not json")
    with pytest.raises(DataFileError, match=r"x\.geojson: not readable GeoJSON"):
        load_outlines(open_pack(tmp_path))
    broken = {"features": [feature("desa", "1", {"type": "Polygon", "coordinates": [[[1]]]})]}
    (tmp_path / "regions" / "x.geojson").write_text(json.dumps(broken))
    with pytest.raises(DataFileError, match=r"x\.geojson: a feature cannot be drawn"):
        load_outlines(open_pack(tmp_path))
    (tmp_path / "regions" / "x.geojson").unlink()
    assert json.loads(load_outlines(open_pack(tmp_path)).body)["areas"] == []


# ---------------------------------------------------------------- the day's counters

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # 10:00 WIB


def test_the_day_starts_at_midnight_wib() -> None:
    assert day_start(NOW) == datetime(2026, 12, 4, 17, 0, tzinfo=UTC)
    late_evening_utc = datetime(2026, 12, 5, 18, 30, tzinfo=UTC)  # 01:30 WIB on the 6th
    assert day_start(late_evening_utc) == datetime(2026, 12, 5, 17, 0, tzinfo=UTC)


def test_percentiles_interpolate_as_postgresql_does() -> None:
    assert percentile([], 0.9) is None
    assert percentile([42.0], 0.9) == 42.0
    # percentile_cont(0.9) of 10..100 step 10: rank 8.1 -> 90 + 0.1 * 10
    assert percentile([float(x) for x in range(100, 0, -10)], 0.9) == pytest.approx(91.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def p1(minutes_ago: float, dispatch_after_s: float | None) -> P1Fact:
    received = NOW - timedelta(minutes=minutes_ago)
    dispatched = (
        None if dispatch_after_s is None else received + timedelta(seconds=dispatch_after_s)
    )
    return P1Fact(received, dispatched, 60)


def test_p1_dispatch_p90_against_the_target_counts_todays_p1s_only() -> None:
    facts = DayFacts(
        p1=(
            *(p1(30 + i, 20 + i) for i in range(9)),  # 20..28 s
            p1(5, 400),
            p1(1, None),  # not dispatched yet
            p1(11 * 60, 1000),  # yesterday (23:00 WIB): not today's
        ),
        complaints=(),
    )
    counters = day_counters(facts, now=NOW)
    assert (counters.p1, counters.p1_waiting, counters.p1_target_s) == (11, 1, 60)
    assert counters.p1_dispatch_p90_s == pytest.approx(28 + 0.1 * (400 - 28))
    assert counters.p1_on_target is False
    quick = DayFacts(p1=tuple(p1(30, 15) for _ in range(5)), complaints=())
    assert day_counters(quick, now=NOW).p1_on_target is True
    none = day_counters(DayFacts((), ()), now=NOW)
    assert none.p1_dispatch_p90_s is None and none.p1_on_target is None
    assert none.complaints_in_time_share is None


def complaint(received_days_ago: float, answered_days_after: float | None) -> ComplaintFact:
    received = NOW - timedelta(days=received_days_ago)
    answered = (
        None if answered_days_after is None else received + timedelta(days=answered_days_after)
    )
    return ComplaintFact(received, answered)


def test_complaints_count_on_the_day_they_were_decided() -> None:
    facts = DayFacts(
        p1=(),
        complaints=(
            complaint(2, 2 - 1 / 24),  # answered an hour ago, in time
            complaint(4, 4 - 2 / 24),  # answered two hours ago, late (its 3 days ended yesterday)
            complaint(3 + 2 / 24, None),  # its 3 days ended two hours ago, unanswered: late
            complaint(3 + 1 / 24, 3.5),  # ended an hour ago, answered later: late, counted now
            complaint(1, None),  # still within its 3 days: pending
            complaint(0.1, 0.05),  # answered today, in time
            complaint(5, 1),  # answered days ago: decided before today
        ),
    )
    counters = day_counters(facts, now=NOW)
    assert (counters.complaints_in_time, counters.complaints_decided) == (2, 4)
    assert counters.complaints_in_time_share == 0.5
    assert counters.complaints_pending == 1


# ---------------------------------------------------------------- the change watch and feed

T0 = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


def look(since_s: float, now_s: float, count: int, newest_s: float | None) -> Look:
    def t(s: float | None) -> datetime | None:
        return None if s is None else T0 + timedelta(seconds=s)

    since, now = t(since_s), t(now_s)
    assert since is not None and now is not None
    return Look(since, now, count, t(newest_s))


def test_the_watch_sees_a_new_row_even_one_committed_late_with_an_earlier_time() -> None:
    watch = ChangeWatch(reanchor=timedelta(minutes=10))
    assert watch.since() is None
    assert not watch.saw(look(0, 60, 5, 50))  # the first look only sets where to count from
    assert watch.since() == T0
    assert not watch.saw(look(0, 61, 5, 50))
    assert watch.saw(look(0, 62, 6, 61.5))
    # A transaction that began before the newest but committed after it: same newest time,
    # one more row.
    assert watch.saw(look(0, 63, 7, 61.5))
    assert not watch.saw(look(0, 64, 7, 61.5))


def test_the_watch_moves_its_starting_point_on_without_a_false_change() -> None:
    watch = ChangeWatch(reanchor=timedelta(minutes=10))
    watch.saw(look(0, 60, 5, 50))
    watch.saw(look(0, 601, 9, 590))
    assert watch.since() is None  # counted from too long ago: start again from now
    assert not watch.saw(look(541, 602, 2, 590))  # a new start, nothing new
    assert watch.since() == T0 + timedelta(seconds=541)
    assert watch.saw(look(541, 603, 3, 602.5))


class FakeReads:
    """Looks that say what the test tells them, counting how often they were asked."""

    def __init__(self) -> None:
        self.count = 0
        self.looks = 0
        self.failing = False

    async def __call__(self, since: datetime | None) -> Look:
        self.looks += 1
        if self.failing:
            raise OSError("connection refused")
        start = since or T0
        return Look(start, start + timedelta(seconds=self.looks), self.count, T0)


async def test_one_poller_wakes_every_listener_and_stops_with_the_last() -> None:
    feed = ChangeFeed(interval_s=0.01)
    reads = FakeReads()
    async with feed.listening(reads) as one, feed.listening(reads) as two:
        assert one is two and feed.watching
        assert await one.wait(0, timeout=0.05) is None  # nothing changed
        reads.count = 1
        first, second = await asyncio.gather(one.wait(0, timeout=2), two.wait(0, timeout=2))
        assert first == second == 1
        assert await one.wait(0, timeout=0) == 1  # a version already past is answered at once
        reads.failing = True  # the database away: no change, no crash, polling goes on
        await asyncio.sleep(0.05)
        reads.failing = False
        reads.count = 2
        assert await one.wait(1, timeout=2) == 2
    assert not feed.watching
    asked = reads.looks
    await asyncio.sleep(0.05)
    assert reads.looks == asked  # no listener, no polling


async def test_closing_the_feed_ends_every_wait_at_once() -> None:
    feed = ChangeFeed(interval_s=0.01)
    async with feed.listening(FakeReads()) as listener:
        waiting = asyncio.create_task(listener.wait(0, timeout=30))
        await asyncio.sleep(0.02)
        await feed.close()
        assert await asyncio.wait_for(waiting, 1) is None
        assert feed.closed and not feed.watching


def test_a_server_sent_event_is_framed_as_the_standard_says() -> None:
    assert sse("changed", "7") == "event: changed\ndata: 7\n\n"


# ---------------------------------------------------------------- who may do what

AT = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
INCIDENT = uuid.uuid4()


def test_each_role_may_do_only_its_own_part() -> None:
    assert actions_of(Role.VIEWER) == [] and actions_of(Role.UNIT) == []
    assert actions_of(Role.CALL_TAKER) == ["review"]
    assert actions_of(Role.AGENCY) == ["answer-work-order", "close-work-order"]
    assert set(actions_of(Role.SUPERVISOR)) == {a.value for a in Action}
    assert all(Role.SUPERVISOR in roles for roles in MAY.values())


def test_a_command_is_in_the_name_of_the_person_whatever_the_page_said() -> None:
    fields = {"incident_id": str(INCIDENT), "priority": "P2", "note": "bicara lancar"}
    forged = {**fields, "requested_by": "someone-else", "requested_at": "2020-01-01T00:00:00Z"}
    command = command_for(Action.REVIEW, forged, by="sari", at=AT)
    assert command == ReviewTriageV1(
        incident_id=INCIDENT,
        priority=Priority.P2,
        note="bicara lancar",
        requested_by="sari",
        requested_at=AT,
    )
    answer = command_for(
        Action.ANSWER_WORK_ORDER,
        {"incident_id": str(INCIDENT), "response": "dijadwalkan"},
        by="dpupr-1",
        at=AT,
    )
    assert isinstance(answer, AnswerWorkOrderV1) and answer.requested_by == "dpupr-1"


@pytest.mark.parametrize(
    ("action", "fields", "says"),
    [
        (Action.REVIEW, {"incident_id": str(INCIDENT), "priority": "P9"}, "priority"),
        (Action.ANSWER_WORK_ORDER, {"incident_id": str(INCIDENT), "response": ""}, "response"),
        (Action.CANCEL_DISPATCH, {"incident_id": str(INCIDENT)}, "unit_id"),
        (Action.CLOSE_INCIDENT, {"incident_id": str(INCIDENT), "colour": "red"}, "colour"),
    ],
)
def test_an_action_that_does_not_make_its_command_is_refused_saying_why(
    action: Action, fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(BadAction, match=says):
        command_for(action, fields, by="sari", at=AT)


def test_agency_names_match_without_case_and_never_when_missing() -> None:
    assert same_agency("dpupr", "DPUPR")
    assert not same_agency("DPUPR", "DLH")
    assert not same_agency(None, "DPUPR") and not same_agency("DPUPR", None)


# ---------------------------------------------------------------- what an agency sees


def incident(agency: str | None, work_order_agency: str | None = None) -> MapIncident:
    return MapIncident(
        uuid.uuid4(), "dispatched", "x", "P3", agency, None, None, None, None, AT, False, False,
        None, None, work_order_agency,
    )  # fmt: skip


def order(incident_id: uuid.UUID, agency: str) -> QueuedWorkOrder:
    return QueuedWorkOrder(
        uuid.uuid4(), incident_id, agency, "infrastructure", "P3", "jalan rusak", AT, AT, None,
        None, None, None, "open", False, None, None,
    )  # fmt: skip


def board(*incidents: MapIncident) -> Board:
    counters = day_counters(DayFacts((), ()), now=AT)
    return Board(
        at=AT,
        incidents=incidents,
        units=(
            MapUnit("AMB-1", "ambulance", "PSC 119", "available", 0.0, 0.0, None, AT),
            MapUnit("CREW-1", "public_works_crew", "DPUPR", "available", 0.0, 0.0, None, AT),
        ),
        review=(),
        waiting=(),
        work_orders=tuple(
            order(i.incident_id, i.work_order_agency) for i in incidents if i.work_order_agency
        ),
        counters=counters,
    )


def test_an_agency_sees_only_its_own_incidents_units_and_work_orders() -> None:
    road, rubbish, medical = incident("DPUPR", "DPUPR"), incident("DLH", "DLH"), incident("PSC 119")
    whole = board(road, rubbish, medical)
    officer = Person(uuid.uuid4(), "dpupr-1", Role.AGENCY, None, "dpupr")
    seen = visible_to(whole, officer)
    assert [i.incident_id for i in seen.incidents] == [road.incident_id]
    assert [w.agency for w in seen.work_orders] == ["DPUPR"]
    assert [u.unit_id for u in seen.units] == ["CREW-1"]
    supervisor = Person(uuid.uuid4(), "sari", Role.SUPERVISOR, None, None)
    assert visible_to(whole, supervisor) is whole
    assert isinstance(whole.counters, DayCounters)


async def test_the_board_is_read_once_per_version_and_again_when_old() -> None:
    clock = [0.0]
    cache = BoardCache(max_age_s=2.0, clock=lambda: clock[0])
    reads: list[int] = []

    async def read() -> Board:
        reads.append(1)
        await asyncio.sleep(0.01)
        return board()

    boards = await asyncio.gather(*(cache.get(3, read) for _ in range(5)))
    assert len(reads) == 1 and all(b is boards[0] for b in boards)
    await cache.get(4, read)  # a change
    assert len(reads) == 2
    clock[0] = 2.5  # what only time changes
    await cache.get(4, read)
    assert len(reads) == 3
    await cache.get(None, read)  # nobody watches the read model: always read
    await cache.get(None, read)
    assert len(reads) == 5


def test_phone_numbers_in_free_text_are_masked_and_other_fields_kept() -> None:
    entry = TimelineEntry(AT, "x", "DPUPR answered: hubungi 0812-3456-7890 atau +6281355550001")
    shown = masked_text(entry, "summary", "event_type")
    assert shown.summary == "DPUPR answered: hubungi 08123*****90 atau +6281*******01"
    assert shown.at == AT and shown.event_type == "x"
    plain = TimelineEntry(AT, "x", "no number here")
    assert masked_text(plain, "summary") is plain
