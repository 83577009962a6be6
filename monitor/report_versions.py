"""Report computations and issued versions (SPEC R8, R9): the pure parts the service runs and the shapes it returns.

* Computing a report stores nothing. The events are loaded on the event loop; the replay and the assessment
  (the heavy part, about a second for the sample network) run in a worker thread through
  :func:`replay_history` and :func:`assess_body`, and a :data:`Checkpoint` (an HTTP request's
  ``is_disconnected``) is asked before each step, so that a caller who left stops paying (:class:`ReportCancelled`).
* *Issuing* stores a version (its JSON text, policy hash, as-of, issuer and the event-log position it saw);
  *signing* one closes the month. A closed month's report shows the signed version beside a recomputation and
  :func:`changes_json`: the events the recomputation saw that the signed version did not, and the headline
  numbers that differ.

JSON shapes (times RFC 3339 with the contract's offset):

* a version (:func:`version_json`): ``version``, ``as_of``, ``issued_at``, ``issued_by``, ``policy_hash``,
  ``last_event_seq``, ``reason``, ``signed``, ``signed_by``, ``signed_at``, ``superseded_by``;
* changes since the signature: ``signed_version``, ``events_received`` (dated in the month), ``events`` (the
  first :data:`LISTED` of them: ``type``, ``at``, ``received_at``, ``known``, ``node``, ``source``),
  ``events_dated_outside_month``, ``differences`` ({field: {``signed``, ``recomputed``}} for the
  :data:`HEADLINE` fields that differ).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from monitor.assessment import Assessment, Month, assess
from monitor.contracts import Contract
from monitor.engine import Engine, History
from monitor.errors import InputError, SlawatchError
from monitor.inventory import Inventory
from monitor.report import report_json
from monitor.storage.repository import (
    EventDelta,
    EventLog,
    ReportStateError,
    ReportVersion,
    StoredReport,
    report_text,
)

__all__ = [
    "HEADLINE",
    "LISTED",
    "REASON_MAX_BYTES",
    "Checkpoint",
    "EventLog",
    "ReportCancelled",
    "ReportStateError",
    "ReportVersion",
    "StoredReport",
    "assess_body",
    "changes_json",
    "check_as_of",
    "check_reason",
    "go_on",
    "month_of",
    "replay_history",
    "report_text",
    "version_json",
]

log = logging.getLogger("slawatch.report")

#: The headline numbers compared between a signed version and a recomputation.
HEADLINE = ("score", "share_paid", "amount", "online_rate")
#: At most this many events received since a signature are listed (all are counted).
LISTED = 1000
#: A reason is free text (SPEC R10): at most 4 KiB of UTF-8.
REASON_MAX_BYTES = 4096

#: Asked before each expensive step of a computation: True when the caller has gone.
Checkpoint = Callable[[], Awaitable[bool]]


class ReportCancelled(SlawatchError):
    """The caller went away (its checkpoint said so) before the report was computed."""


async def go_on(checkpoint: Checkpoint | None, step: str) -> None:
    """Raise :class:`ReportCancelled` if the caller has gone."""
    if checkpoint is not None and await checkpoint():
        log.info("report cancelled: the caller has gone", extra={"step": step})
        raise ReportCancelled(f"the caller went away before the report's {step}")


def month_of(text: str, contract: Contract) -> Month:
    try:
        return Month.parse(text, contract.policy)
    except ValueError as exc:
        raise InputError(str(exc), field="month") from None


def check_reason(reason: str | None) -> str | None:
    """A stated reason, stripped (None when empty); at most :data:`REASON_MAX_BYTES` of UTF-8 (InputError)."""
    if reason is None:
        return None
    if len(reason.encode("utf-8", "surrogatepass")) > REASON_MAX_BYTES:
        raise InputError(f"a reason is at most {REASON_MAX_BYTES} bytes of UTF-8", field="reason")
    return reason.strip() or None


def check_as_of(as_of: datetime | None, now: datetime) -> datetime:
    """The as-of of a version to issue: ``now`` by default; never in the future (InputError, field ``as_of``),
    where events not yet received would be missing from it."""
    if as_of is None:
        return now
    if as_of > now:
        raise InputError(
            f"a version is issued as of now or earlier, not {as_of.isoformat()} (now {now.isoformat()})",
            field="as_of",
        )
    return as_of


def replay_history(engine: Engine, events: EventLog, as_of: datetime) -> History:
    """Parse the loaded events and replay them through ``engine`` (a fresh one, or one loaded from the
    projection's snapshot, which the events follow), then freeze its history as of ``as_of`` (pure; run it in a
    worker thread; the engine is the caller's alone)."""
    engine.replay(events.events())
    return engine.snapshot(as_of)


def assess_body(
    inventory: Inventory, contract: Contract, history: History, month: Month, generated_at: datetime
) -> tuple[Assessment, dict[str, Any], str]:
    """The month's assessment, its JSON (``version`` null: nothing is issued) and that JSON's text (pure; run
    it in a worker thread)."""
    assessment = assess(inventory, contract, history, month)
    body = report_json(assessment, version=None, generated_at=generated_at)
    text = report_text(body)
    log.debug("report computed", extra={"contract": contract.id, "month": month.key})
    return assessment, body, text


def _time(t: datetime | None, zone: tzinfo) -> str | None:
    return None if t is None else t.astimezone(zone).isoformat()


def version_json(v: ReportVersion, zone: tzinfo) -> dict[str, Any]:
    """What is known about an issued version, as JSON (see the module docstring)."""
    return {
        "version": v.version,
        "as_of": _time(v.as_of, zone),
        "issued_at": _time(v.generated_at, zone),
        "issued_by": v.issued_by,
        "policy_hash": v.policy_hash,
        "last_event_seq": v.last_event_seq,
        "reason": v.reason,
        "signed": v.signed,
        "signed_by": v.signed_by,
        "signed_at": _time(v.signed_at, zone),
        "superseded_by": v.superseded_by,
    }


def changes_json(
    signed: StoredReport, recomputed: Mapping[str, Any], delta: EventDelta, zone: tzinfo
) -> dict[str, Any]:
    """What changed between a signed version and a recomputation (see the module docstring)."""
    differences = {
        key: {"signed": signed.body.get(key), "recomputed": recomputed.get(key)}
        for key in HEADLINE
        if signed.body.get(key) != recomputed.get(key)
    }
    return {
        "signed_version": signed.version,
        "events_received": delta.count,
        "events": [
            {
                "type": e.type,
                "at": _time(e.at, zone),
                "received_at": _time(e.recorded_at, zone),
                "known": _time(e.known, zone),
                "node": e.node,
                "source": e.source,
            }
            for e in delta.events
        ],
        "events_dated_outside_month": delta.elsewhere,
        "differences": differences,
    }
