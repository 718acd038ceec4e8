"""Public alerts (CAP 1.2) on the real broker and PostgreSQL: a disaster report becomes an
Alert and its cancellation a Cancel; an officer's alert, update and cancel make a thread;
the feed lists the latest message of each thread, read as the gateway reads it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.cap import CapAlert
from schemas.vocabulary import Channel
from services.cli.readmodel import read_model
from services.clients.operator import new_intake, submit
from services.gateway.cap import alert_xml, alerts_feed
from services.projector.queries import cap_alert, cap_alert_entry, current_cap_alerts
from tests.conftest import Pipeline, eventually, siaga_cli

pytestmark = pytest.mark.integration

XSD = Path(__file__).resolve().parents[3] / "shared" / "specs" / "cap12" / "CAP-v1.2.xsd"


def valid_cap(alert: CapAlert) -> bytes:
    """The alert's XML, checked against the OASIS schema when ../shared has it (the unit
    tests say so when it does not)."""
    document = alert_xml(alert)
    if XSD.is_file():
        import xmlschema

        xmlschema.XMLSchema(str(XSD)).validate(document.decode())
    return document


async def feed(pipeline: Pipeline) -> list[CapAlert]:
    """The current alerts, read as the gateway reads them: the reader role."""
    conn = await read_model(pipeline.settings)
    try:
        return await current_cap_alerts(conn, now=datetime.now(UTC))
    finally:
        await conn.close()


async def thread_of(pipeline: Pipeline, incident_id: object, length: int) -> list[CapAlert]:
    """The derived alerts of an incident, once there are `length` of them, oldest first."""

    async def probe() -> list[CapAlert] | None:
        rows = await pipeline.fetch(
            "SELECT message FROM readmodel.cap_alerts WHERE incident_id = $1 "
            "AND origin = 'incident' ORDER BY thread_length",
            incident_id,
        )
        return (
            [CapAlert.model_validate(r["message"]) for r in rows] if len(rows) >= length else None
        )

    return await eventually(probe, timeout=30, what=f"{length} alert(s) of incident {incident_id}")


async def alert_cli(pipeline: Pipeline, *args: str) -> str:
    """Run `siaga alert ...`; the identifier it prints alone on its last line."""
    done = await siaga_cli(pipeline.settings, "alert", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


async def test_a_disaster_report_becomes_an_alert_and_its_cancellation_withdraws_it(
    pipeline: Pipeline,
) -> None:
    flood = new_intake(
        channel=Channel.CALL112,
        text="banjir di desa Kalisalak Limpung, air masuk rumah warga",
        phone="+6281255550001",
    )
    await submit(pipeline.settings, flood)
    incident = await pipeline.incident_for_intake(flood.intake_id, with_units=0)
    assert incident.category == "disaster"
    (alert,) = await thread_of(pipeline, incident.incident_id, 1)
    assert (alert.msg_type, alert.event, alert.incident_id) == (
        "Alert",
        "Banjir",
        incident.incident_id,
    )
    assert alert.area.area_desc == "Desa Kalisalak, Kecamatan Limpung, Kabupaten Batang"
    assert alert.sent.utcoffset() is not None and alert.sent.utcoffset().total_seconds() == 7 * 3600
    assert b"<msgType>Alert</msgType>" in valid_cap(alert)
    assert [a.identifier for a in await feed(pipeline)] == [alert.identifier]

    done = await siaga_cli(
        pipeline.settings, "incident", "cancel", str(incident.incident_id), "--reason", "hoaks"
    )
    assert done.returncode == 0, done.stderr
    _, cancel = await thread_of(pipeline, incident.incident_id, 2)
    assert cancel.msg_type == "Cancel"
    assert [r.identifier for r in cancel.references] == [alert.identifier]
    valid_cap(cancel)
    # the feed keeps the Cancel (a reader learns the alert is withdrawn), not the Alert
    assert [a.identifier for a in await feed(pipeline)] == [cancel.identifier]


async def test_an_officers_alert_update_and_cancel_form_one_thread(pipeline: Pipeline) -> None:
    graded = ("--urgency", "Expected", "--severity", "Moderate", "--certainty", "Likely")
    first = await alert_cli(
        pipeline,
        "issue",
        "--hazard", "landslide",
        "--kecamatan", "Blado",
        "--kecamatan", "Reban",
        *graded,
        "--headline", "Waspada longsor di Blado dan Reban",
        "--expires", "6h",
        "--by", "petugas piket BPBD",
    )  # fmt: skip
    update = await alert_cli(
        pipeline, "update", first, "--severity", "Severe", "--note", "retakan tanah melebar"
    )
    cancel = await alert_cli(pipeline, "cancel", update, "--reason", "hujan reda, tanah stabil")

    async def projected() -> bool:
        conn = await read_model(pipeline.settings)
        try:
            return await cap_alert(conn, cancel) is not None
        finally:
            await conn.close()

    await eventually(projected, what="the Cancel in the read model")
    conn = await read_model(pipeline.settings)
    try:
        thread = [await cap_alert_entry(conn, i) for i in (first, update, cancel)]
    finally:
        await conn.close()
    alert, updated, cancelled = (e.alert for e in thread if e is not None)
    assert [e.origin for e in thread if e] == ["issued"] * 3
    assert [e.replaced_by for e in thread if e] == [cancel, cancel, None]
    assert (alert.msg_type, updated.msg_type, cancelled.msg_type) == ("Alert", "Update", "Cancel")
    assert alert.area.area_desc == "Kecamatan Blado, Kecamatan Reban, Kabupaten Batang"
    assert len(alert.area.polygons) == 2 and alert.source == "petugas piket BPBD"
    assert (updated.severity, updated.note, updated.area) == (
        "Severe",
        "retakan tanah melebar",
        alert.area,
    )
    assert [r.identifier for r in updated.references] == [first]
    assert [r.identifier for r in cancelled.references] == [update, first]
    assert cancelled.references[1].sent == alert.sent
    assert cancelled.note == "hujan reda, tanah stabil"
    for message in (alert, updated, cancelled):
        valid_cap(message)

    current = await feed(pipeline)
    assert cancel in [a.identifier for a in current]
    assert not {first, update} & {a.identifier for a in current}
    document = alerts_feed(current, base_url="http://gateway", now=datetime.now(UTC))
    assert f"http://gateway/cap/alerts/{cancel}.xml".encode() in document
    assert f"/cap/alerts/{first}.xml".encode() not in document

    # a replaced or cancelled alert cannot be changed again: one line, exit 2
    for args in (("update", first, "--severity", "Minor"), ("cancel", cancel, "--reason", "x")):
        refused = await siaga_cli(pipeline.settings, "alert", *args)
        assert refused.returncode == 2, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
