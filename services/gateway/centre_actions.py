"""The command-centre page's actions: who may do which, and the command each becomes, in
the person's name (the same commands as `siaga incident review`, `siaga dispatch`,
`siaga incident cancel|close` and `siaga workorder answer|close`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.commands import (
    AnswerWorkOrderV1,
    CancelDispatchV1,
    CancelIncidentV1,
    CloseIncidentV1,
    CloseWorkOrderV1,
    ReassignDispatchV1,
    ReviewTriageV1,
)
from schemas.common import Contract
from schemas.errors import first_error
from services.gateway.people import Role


class Action(StrEnum):
    """What the page lets a person do (the last part of `POST /centre/actions/...`)."""

    REVIEW = "review"
    CANCEL_DISPATCH = "cancel-dispatch"
    REASSIGN = "reassign"
    CANCEL_INCIDENT = "cancel-incident"
    CLOSE_INCIDENT = "close-incident"
    ANSWER_WORK_ORDER = "answer-work-order"
    CLOSE_WORK_ORDER = "close-work-order"


# A call-taker answers triage's questions; a supervisor may do everything; an agency's
# officer answers and closes its own agency's work orders (checked against the order); a
# viewer watches.
MAY: dict[Action, frozenset[Role]] = {
    Action.REVIEW: frozenset({Role.CALL_TAKER, Role.SUPERVISOR}),
    Action.CANCEL_DISPATCH: frozenset({Role.SUPERVISOR}),
    Action.REASSIGN: frozenset({Role.SUPERVISOR}),
    Action.CANCEL_INCIDENT: frozenset({Role.SUPERVISOR}),
    Action.CLOSE_INCIDENT: frozenset({Role.SUPERVISOR}),
    Action.ANSWER_WORK_ORDER: frozenset({Role.SUPERVISOR, Role.AGENCY}),
    Action.CLOSE_WORK_ORDER: frozenset({Role.SUPERVISOR, Role.AGENCY}),
}
WORK_ORDER_ACTIONS = frozenset({Action.ANSWER_WORK_ORDER, Action.CLOSE_WORK_ORDER})


def actions_of(role: Role) -> list[str]:
    """The actions a role may take (the page shows only their buttons)."""
    return [a.value for a, roles in MAY.items() if role in roles]


class BadAction(ValueError):
    """An action whose fields do not make its command; the message says which, in a line."""


def command_for(action: Action, fields: dict[str, Any], *, by: str, at: datetime) -> Contract:
    """The command of an action, given as the page sent it and attributed to `by` at `at`
    (whatever the page said of who and when)."""
    given = {**fields, "requested_by": by, "requested_at": at}
    try:
        match action:
            case Action.REVIEW:
                return ReviewTriageV1.model_validate(given)
            case Action.CANCEL_DISPATCH:
                return CancelDispatchV1.model_validate(given)
            case Action.REASSIGN:
                return ReassignDispatchV1.model_validate(given)
            case Action.CANCEL_INCIDENT:
                return CancelIncidentV1.model_validate(given)
            case Action.CLOSE_INCIDENT:
                return CloseIncidentV1.model_validate(given)
            case Action.ANSWER_WORK_ORDER:
                return AnswerWorkOrderV1.model_validate(given)
            case Action.CLOSE_WORK_ORDER:
                return CloseWorkOrderV1.model_validate(given)
    except ValidationError as exc:
        where, message = first_error(exc, where="body")
        raise BadAction(f"{where}: {message}") from None
    raise BadAction(f"unknown action {action!r}")  # pragma: no cover - the match is exhaustive


def same_agency(person_agency: str | None, agency: str | None) -> bool:
    """Whether an agency's officer acts for `agency` (names compared without case)."""
    if not person_agency or not agency:
        return False
    return person_agency.casefold() == agency.casefold()
