"""Exactly-once handling of state-changing requests, keyed by (caller, MessageId)."""

from __future__ import annotations

from typing import Callable

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain import errors
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.errors import MessageIdReused, ServiceError
from his_pacs_ws.services.common import fingerprint, jsonable, without

Rule = Callable[[UnitOfWork, dict], dict]


class Replayed(dict):
    """A stored response handed back for a repeated MessageId."""


def run_once(uow: UnitOfWork, caller: Caller, operation: str, request: dict, rule: Rule) -> dict:
    """Run ``rule`` in one transaction unless this MessageId was handled before.

    The MessageId is claimed in the same transaction as the change, so a retry racing the
    original waits on the unique key and then replays its answer. A business fault is
    stored too and replayed; a retryable one (database down) or a malformed request is not,
    so the retry can win.
    """
    message_id, name = request["message_id"], caller.name
    digest = fingerprint(operation, without(request, "message_id"))
    with uow:
        claim = uow.messages.claim(name, message_id, operation, digest)
        if claim is None:
            return _replay(uow, name, message_id, digest)
        try:
            result = rule(uow, request)
        except ServiceError as err:
            uow.rollback()
            if err.replayable and not err.retryable:
                uow.messages.record_fault(name, message_id, operation, digest, err.code, err.message)
                uow.commit()
            raise
        uow.messages.store_response(claim, jsonable(result))
        if uow.holding:  # committed by the dispatcher, with the call's record
            uow.hand_over()
        else:
            uow.commit()
        return result


def _replay(uow: UnitOfWork, caller_name: str, message_id: str, digest: str) -> dict:
    prior = uow.messages.get(caller_name, message_id)
    if prior is None or prior.request_hash != digest:
        raise MessageIdReused(
            f"MessageId {message_id} was already used for a different request"
        )
    if prior.fault_code:
        raise fault_from_code(prior.fault_code, prior.fault_message or "")
    return Replayed(prior.response or {})


def fault_from_code(code: str, message: str) -> ServiceError:
    cls = getattr(errors, code, None)
    if isinstance(cls, type) and issubclass(cls, ServiceError):
        return cls(message)
    err = ServiceError(message)
    err.code = code
    return err
