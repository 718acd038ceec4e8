"""Synthetic intakes: a realistic mix of categories, channels, places and duplicates."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from schemas.envelope import Event
from schemas.vocabulary import Channel, UnitType
from services.clients.operator import intake_event, new_intake
from services.common.gazetteer import Gazetteer
from services.dispatcher.fleet import UnitSpec

# (weight, channel, text template): emergencies on the voice lines, complaints elsewhere.
MIX: tuple[tuple[int, Channel, str], ...] = (
    (12, Channel.PSC119, "tolong ambulan, bapak saya pingsan tidak sadar di {place}"),
    (6, Channel.CALL112, "ada kecelakaan motor di {place}, korban luka parah"),
    (4, Channel.CALL112, "kebakaran rumah warga di {place}, api besar"),
    (3, Channel.CALL112, "ada maling motor di {place}, pelaku kabur"),
    (2, Channel.CALL112, "banjir bandang di {place}, warga terjebak"),
    (2, Channel.PSC119, "anak tenggelam di sungai dekat {place}"),
    (15, Channel.WHATSAPP, "jalan berlubang besar di {place}, mohon diperbaiki"),
    (10, Channel.WHATSAPP, "sampah menumpuk di pasar {place}, baunya menyengat"),
    (8, Channel.INSTAGRAM, "lampu jalan mati di {place} sudah seminggu"),
    (8, Channel.WEB, "bagaimana cara mengurus akta kelahiran di {place}"),
    (6, Channel.SMS, "air PDAM mati di {place} sejak kemarin"),
    (6, Channel.WHATSAPP, "bansos belum cair untuk warga {place}"),
    (4, Channel.YOUTUBE, "pedagang kaki lima menutup trotoar di {place}"),
    (3, Channel.CALL112, ""),  # ghost calls
)


@dataclass
class Workload:
    """Generates intakes; a share of them are resent (the same intake id twice)."""

    gazetteer: Gazetteer
    duplicate_share: float = 0.03
    seed: int = 7

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._places = [a.name for a in self.gazetteer.desa or self.gazetteer.kecamatan]
        self._weights = [w for w, _, _ in MIX]
        self._recent: list[Event] = []

    def next(self) -> tuple[Event, bool]:
        """The next intake event, and whether it is a resend of a recent one."""
        if self._recent and self._random.random() < self.duplicate_share:
            return self._random.choice(self._recent), True
        _, channel, template = self._random.choices(MIX, weights=self._weights)[0]
        text = template.format(place=self._random.choice(self._places))
        phone = f"+628{self._random.randrange(10**9, 10**10)}"
        event = intake_event(
            new_intake(channel=channel, text=text, phone=phone, intake_id=uuid.uuid4())
        )
        self._recent = [*self._recent[-99:], event]
        return event, False


def bench_fleet(gazetteer: Gazetteer, *, per_kecamatan: int = 20) -> list[UnitSpec]:
    """A large fleet, so dispatch latency measures the pipeline, not a shortage of units."""
    kinds = (
        (UnitType.AMBULANCE, ("ALS",)),
        (UnitType.AMBULANCE, ()),
        (UnitType.FIRE_TRUCK, ()),
        (UnitType.POLICE, ()),
        (UnitType.BPBD_TEAM, ()),
        (UnitType.RESCUE, ()),
    )
    fleet = []
    for kec in gazetteer.kecamatan:
        for i in range(per_kecamatan):
            kind, capabilities = kinds[i % len(kinds)]
            fleet.append(
                UnitSpec(
                    f"B-{kind.value[:4].upper()}-{kec.code[-2:]}-{i:03d}",
                    kind,
                    "bench",
                    f"bench base {kec.name}",
                    kec.name,
                    capabilities,
                )
            )
    return fleet
