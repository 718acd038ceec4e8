"""The incident lifecycle as one state machine: which steps are forward, which are illegal."""

from __future__ import annotations

from schemas.vocabulary import ENDED_STATUSES
from schemas.vocabulary import IncidentStatus as S
from schemas.vocabulary import UnitStatus as U

ORDER: tuple[S, ...] = (
    S.RECEIVED,
    S.CLASSIFIED,
    S.DISPATCHED,
    S.ACKNOWLEDGED,
    S.EN_ROUTE,
    S.ON_SCENE,
    S.TRANSPORTING,
    S.AT_HOSPITAL,
    S.RESOLVED,
    S.CLOSED,
)
RANK = {status: i for i, status in enumerate(ORDER)}

# What a unit's report says about its incident.
UNIT_PROGRESS: dict[U, S] = {
    U.ACKNOWLEDGED: S.ACKNOWLEDGED,
    U.EN_ROUTE: S.EN_ROUTE,
    U.ON_SCENE: S.ON_SCENE,
    U.TRANSPORTING: S.TRANSPORTING,
    U.AT_HOSPITAL: S.AT_HOSPITAL,
}
# Reports that mean the unit has left the incident behind.
UNIT_CLEARED = frozenset({U.RETURNING, U.AVAILABLE})
ON_OR_PAST_SCENE = frozenset({U.ON_SCENE, U.TRANSPORTING, U.AT_HOSPITAL})


class IllegalTransition(ValueError):
    """A step the lifecycle does not allow, e.g. a unit report on a resolved incident."""


def advance(current: S | None, proposed: S) -> S | None:
    """The new status after `proposed`, or None when the incident stays as it is.

    Steps only go forward: events of one incident arrive on several topics, so a step
    behind the current one is an earlier fact arriving late, kept as a timestamp only.
    Any non-terminal step on a finished incident is illegal.
    """
    if current is None:
        return proposed
    if current in ENDED_STATUSES:
        if current is S.RESOLVED and proposed is S.CLOSED:
            return proposed
        if proposed == current or proposed in (S.RECEIVED, S.CLASSIFIED, S.DISPATCHED):
            return None  # a late upstream fact about a finished incident
        raise IllegalTransition(f"{proposed.value} after the incident was {current.value}")
    if proposed is S.CLOSED:
        raise IllegalTransition(f"closed while {current.value}: resolve it first")
    if proposed in ENDED_STATUSES and proposed not in RANK:
        return proposed  # cancelled or merged, from any open state
    if RANK[proposed] > RANK[current]:
        return proposed
    return None
