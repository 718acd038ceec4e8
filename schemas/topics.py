"""Topic names, all derived from one configurable prefix so regencies can share a cluster."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "siaga"


@dataclass(frozen=True)
class Topics:
    """The topics of one Siaga deployment; `prefix` replaces the leading `siaga`."""

    prefix: str = DEFAULT_PREFIX

    @property
    def intake_received(self) -> str:
        """Raw reports from operators and channel adapters, keyed by intake id."""
        return f"{self.prefix}.intake.received"

    @property
    def intake_enriched(self) -> str:
        """Reports with place, coordinates and caller signals, keyed by intake id."""
        return f"{self.prefix}.intake.enriched"

    @property
    def incident_events(self) -> str:
        """Incident lifecycle facts from triage and tracker, keyed by incident id."""
        return f"{self.prefix}.incident.events"

    @property
    def dispatch_orders(self) -> str:
        """Unit orders, cancellations and agency work orders, keyed by incident id."""
        return f"{self.prefix}.dispatch.orders"

    @property
    def dispatch_commands(self) -> str:
        """Supervisor and agency commands (cancel, reassign, answer, close), keyed by incident id."""
        return f"{self.prefix}.dispatch.commands"

    @property
    def unit_status(self) -> str:
        """Field-unit reports and fleet changes, keyed by unit id."""
        return f"{self.prefix}.unit.status"

    @property
    def alerts(self) -> str:
        """Public alerts (CAP 1.2) officers issue, update and cancel, keyed by alert identifier."""
        return f"{self.prefix}.alerts"

    @property
    def deadletter(self) -> str:
        """Messages a stage could not process, with the reason, keyed as the original."""
        return f"{self.prefix}.deadletter"

    def all(self) -> list[str]:
        """Every topic of the deployment, in pipeline order."""
        return [
            self.intake_received,
            self.intake_enriched,
            self.incident_events,
            self.dispatch_orders,
            self.dispatch_commands,
            self.unit_status,
            self.alerts,
            self.deadletter,
        ]
