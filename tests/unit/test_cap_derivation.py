"""Public alerts derived from disaster incidents: which incident event becomes an Alert, an
Update or a Cancel, and what they say; the regency's alert policy they follow."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.cap import CapAlert
from schemas.common import Place
from schemas.vocabulary import Category, IncidentStatus, Priority
from services.common.alerting import load_alert_policy
from services.common.datapack import DataFileError, open_pack, resolve_pack
from services.gateway.cap import alert_xml
from services.projector.alerts import Triaged, alert_id, on_status, on_triage
from tests.unit.test_cap import CAP, assert_valid_cap

POLICY = load_alert_policy(resolve_pack(None))
INCIDENT = uuid.UUID("7d3c1a52-5b0e-4f3e-9c1a-0e2f4b6d8a10")
AT = datetime(2026, 1, 14, 8, 5, 9, 250000, tzinfo=UTC)
KALISALAK = Place(
    kecamatan_code="33.25.08",
    kecamatan="Limpung",
    desa_code=next(
        a.code
        for a in POLICY.gazetteer.desa
        if a.name == "Kalisalak" and a.parent_code == "33.25.08"
    ),
    desa="Kalisalak",
    lat=-7.03,
    lon=109.92,
    confidence=0.9,
    method="desa",
)
REPORT = "banjir bandang di Kalisalak, air sepinggang, hubungi 081234567890"


def classified(**changes: object) -> Triaged:
    decision = Triaged(
        incident_id=INCIDENT,
        category=Category.DISASTER,
        priority=Priority.P2,
        agency="BPBD",
        confirmed=True,
        channel="call112",
        place=KALISALAK,
        at=AT,
    )
    return replace(decision, **changes)  # type: ignore[arg-type]


def first_alert(text: str = REPORT, **changes: object) -> CapAlert:
    alert = on_triage(None, classified(**changes), cause="ev-1", policy=POLICY, text=text)
    assert alert is not None
    return alert


# ---------------------------------------------------------------- the Alert


def test_a_disaster_becomes_an_alert_worded_from_its_hazard_and_place() -> None:
    alert = first_alert()
    assert alert.identifier == alert_id("ev-1")
    assert (alert.msg_type, alert.status, alert.scope) == ("Alert", "Actual", "Public")
    assert (alert.event, alert.categories) == ("Banjir", ["Met"])
    assert (alert.urgency, alert.severity, alert.certainty) == ("Immediate", "Moderate", "Likely")
    assert alert.sender == "bpbd@batangkab.go.id" and alert.sender_name == "BPBD Kabupaten Batang"
    assert alert.sent.isoformat() == "2026-01-14T15:05:09+07:00"  # WIB, to the second
    assert alert.effective == alert.sent
    assert alert.expires == alert.sent + timedelta(hours=12)
    assert alert.incident_id == INCIDENT and alert.references == []
    assert alert.headline == "Banjir di Desa Kalisalak, Kecamatan Limpung"
    assert alert.area.area_desc == "Desa Kalisalak, Kecamatan Limpung, Kabupaten Batang"
    assert [g.value for g in alert.area.geocodes] == ["33.25.08", KALISALAK.desa_code]
    (ring,) = alert.area.polygons
    assert len(ring) >= 4 and ring[0] == ring[-1]
    assert alert.instruction and "mengungsi" in alert.instruction


def test_a_public_alert_repeats_none_of_the_callers_words() -> None:
    alert = first_alert()
    text = " ".join(str(v) for v in (alert.headline, alert.description, alert.instruction))
    assert "0812" not in text and "sepinggang" not in text
    assert "15.05 WIB" in (alert.description or "")


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("banjir rob masuk rumah warga di Klidang", "Banjir Rob"),
        ("tanah longsor menimpa rumah", "Tanah Longsor"),
        ("angin puting beliung merusak atap", "Angin Puting Beliung"),
        ("gempa terasa kuat, dinding retak", "Gempa Bumi"),
        ("kali meluap, jalan terendam", "Banjir"),
        ("ada bencana di desa kami", "Bencana"),
    ],
)
def test_the_hazard_is_the_one_the_report_names(text: str, event: str) -> None:
    assert first_alert(text).event == event


@pytest.mark.parametrize(
    ("priority", "confirmed", "grades"),
    [
        (Priority.P1, True, ("Immediate", "Severe", "Likely")),
        (Priority.P2, False, ("Immediate", "Moderate", "Possible")),
        (Priority.P3, True, ("Expected", "Minor", "Likely")),
    ],
)
def test_priority_and_confirmation_grade_the_alert(
    priority: Priority, confirmed: bool, grades: tuple[str, str, str]
) -> None:
    alert = first_alert(priority=priority, confirmed=confirmed)
    assert (alert.urgency, alert.severity, alert.certainty) == grades


def test_a_disaster_triage_was_unsure_of_is_told_once_a_person_has_reviewed_it() -> None:
    held = classified(confirmed=False, held=True)
    assert on_triage(None, held, cause="ev-1", policy=POLICY, text=REPORT) is None
    reviewed = on_triage(None, classified(), cause="ev-2", policy=POLICY, text=REPORT)
    assert reviewed is not None and reviewed.msg_type == "Alert"
    assert reviewed.certainty == "Likely"


def test_an_unknown_place_gives_the_whole_regency() -> None:
    alert = first_alert(place=None)
    assert alert.area.area_desc == "Kabupaten Batang"
    assert [g.value for g in alert.area.geocodes] == ["33.25"]
    assert alert.headline == "Banjir di Kabupaten Batang"


def test_another_category_gives_no_alert() -> None:
    fire = classified(category=Category.FIRE)
    assert on_triage(None, fire, cause="ev-1", policy=POLICY, text="kebakaran") is None


# ---------------------------------------------------------------- Update and Cancel


def test_the_thread_of_an_incident_alert_update_on_scene_cancel_when_resolved() -> None:
    alert = first_alert()
    later = AT + timedelta(minutes=40)
    assert (
        on_status(alert, IncidentStatus.DISPATCHED, at=later, cause="ev-2", policy=POLICY) is None
    )
    update = on_status(alert, IncidentStatus.ON_SCENE, at=later, cause="ev-3", policy=POLICY)
    assert update is not None
    assert (update.msg_type, update.certainty) == ("Update", "Observed")
    assert [r.identifier for r in update.references] == [alert.identifier]
    assert update.references[0].sent == alert.sent
    assert "Petugas tiba di lokasi pukul 15.45 WIB." in (update.description or "")
    # a second unit on scene tells nothing new
    assert on_status(update, IncidentStatus.ON_SCENE, at=later, cause="ev-4", policy=POLICY) is None
    cancel = on_status(update, IncidentStatus.RESOLVED, at=later, cause="ev-5", policy=POLICY)
    assert cancel is not None
    assert cancel.msg_type == "Cancel" and cancel.response_types == ["AllClear"]
    assert [r.identifier for r in cancel.references] == [update.identifier, alert.identifier]
    assert cancel.note and "tertangani" in cancel.note
    assert cancel.expires == update.expires  # shown as long as what it withdraws
    # the thread is over: closing the incident later adds nothing
    assert on_status(cancel, IncidentStatus.CLOSED, at=later, cause="ev-6", policy=POLICY) is None
    for message in (alert, update, cancel):
        root = assert_valid_cap(alert_xml(message))
        assert root.findtext(f"{CAP}sent", "").endswith("+07:00")
        assert root.findtext(f"{CAP}info/{CAP}expires", "").endswith("+07:00")


def test_a_review_that_raises_the_priority_updates_and_one_that_finds_no_disaster_cancels() -> None:
    alert = first_alert(confirmed=False)
    raised = on_triage(
        alert, classified(priority=Priority.P1), cause="ev-2", policy=POLICY, text=REPORT
    )
    assert raised is not None
    assert (raised.msg_type, raised.severity, raised.certainty) == ("Update", "Severe", "Likely")
    # the same grades again: nothing to tell
    assert (
        on_triage(
            raised, classified(priority=Priority.P1), cause="ev-3", policy=POLICY, text=REPORT
        )
        is None
    )
    recategorised = classified(category=Category.INFRASTRUCTURE, priority=Priority.P3)
    cancel = on_triage(raised, recategorised, cause="ev-4", policy=POLICY, text=REPORT)
    assert cancel is not None and cancel.msg_type == "Cancel"
    assert cancel.note and "bukan bencana (infrastructure)" in cancel.note
    # raised again to a disaster after its Cancel: a new thread begins
    again = on_triage(cancel, classified(), cause="ev-5", policy=POLICY, text=REPORT)
    assert again is not None and again.msg_type == "Alert" and again.references == []


def test_an_incident_cancelled_or_merged_withdraws_its_alert_without_all_clear() -> None:
    alert = first_alert()
    for status in (IncidentStatus.CANCELLED, IncidentStatus.MERGED):
        cancel = on_status(alert, status, at=AT, cause="ev-9", policy=POLICY)
        assert cancel is not None and cancel.response_types == ["None"]


def test_the_same_cause_gives_the_same_alert() -> None:
    assert first_alert() == first_alert()
    assert (
        first_alert().identifier
        != on_triage(None, classified(), cause="ev-other", policy=POLICY, text=REPORT).identifier
    )  # type: ignore[union-attr]


# ---------------------------------------------------------------- the policy file


def test_the_policy_finds_a_kecamatan_however_it_is_written() -> None:
    for name in ("Limpung", "limpung", "Kecamatan Limpung", "Kec. Limpung", "33.25.08"):
        found = POLICY.kecamatan(name)
        assert found is not None and found.code == "33.25.08", name
    assert POLICY.kecamatan("Atlantis") is None
    area = POLICY.area_of([POLICY.kecamatan("Limpung"), POLICY.kecamatan("Bandar")])  # type: ignore[list-item]
    assert area.area_desc == "Kecamatan Limpung, Kecamatan Bandar, Kabupaten Batang"
    assert len(area.polygons) == 2 and all(r[0] == r[-1] and len(r) >= 4 for r in area.polygons)


def test_a_bad_policy_file_is_refused_with_its_name_and_the_bad_entry(tmp_path: Path) -> None:
    pack = resolve_pack(None)
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / pack.regions.name).write_bytes(pack.regions.read_bytes())
    (tmp_path / "alerts.toml").write_text(
        pack.alerts.read_text().replace('timezone = "Asia/Jakarta"', 'timezone = "Mars/Olympus"')
    )
    with pytest.raises(DataFileError, match=r"alerts\.toml: timezone: unknown time zone"):
        load_alert_policy(open_pack(tmp_path))
