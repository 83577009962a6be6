"""``slawatch alerts``: the alert outbox seen from the command line.

* ``slawatch alerts status [--json]``: messages by target and status, the oldest undelivered one per target,
  the parked messages with their last error; exit code 1 with ``--check`` when any message is parked.
* ``slawatch alerts retry [--target NAME]``: put parked messages back in the queue (after fixing the target).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from monitor.errors import SlawatchError
from monitor.events import format_time
from monitor.settings import Settings

if TYPE_CHECKING:  # the outbox and the database (SQLAlchemy) load only when a command runs: `--help` stays fast
    from monitor.alerts.outbox import OutboxStatus
    from monitor.storage.database import Database

T = TypeVar("T")

alerts_app = typer.Typer(help="Alerts to on-call crews: the outbox (status, parked messages, retry).")


def _with_db(main: Callable[[Database], Awaitable[T]]) -> T:
    from monitor.runtime import open_service

    async def go() -> T:
        async with open_service(Settings()) as service:
            return await main(service.db)

    try:
        return asyncio.run(go())
    except SlawatchError as exc:
        typer.echo(f"slawatch: {exc}", err=True)
        raise typer.Exit(code=2) from None


def status_json(status: OutboxStatus) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    for (target, state), count in sorted(status.counts.items()):
        targets.setdefault(target, {"pending": 0, "sent": 0, "parked": 0})[state] = count
    for target, oldest in status.oldest_pending.items():
        targets.setdefault(target, {"pending": 0, "sent": 0, "parked": 0})["oldest_pending"] = format_time(oldest)
    return {
        "open_incidents": status.open_incidents,
        "targets": targets,
        "parked": [
            {
                "seq": m.seq,
                "target": m.target,
                "kind": m.kind,
                "incident": m.incident_id,
                "alert_id": m.alert_id,
                "attempts": m.attempts,
                "last_error": m.last_error,
            }
            for m in status.parked
        ],
    }


def status_text(status: OutboxStatus, now: datetime) -> str:
    data = status_json(status)
    lines = [f"alert outbox: {len(data['targets'])} targets, {data['open_incidents']} incidents being alerted"]
    if data["targets"]:
        lines.append(f"{'TARGET':<24} {'PENDING':>8} {'SENT':>8} {'PARKED':>8}  OLDEST PENDING")
        for name, row in data["targets"].items():
            oldest = status.oldest_pending.get(name)
            age = f"{format_time(oldest)} ({int((now - oldest).total_seconds())} s ago)" if oldest else "-"
            lines.append(f"{name:<24} {row['pending']:>8} {row['sent']:>8} {row['parked']:>8}  {age}")
    if data["parked"]:
        lines.append("parked (newest first; `slawatch alerts retry` puts them back):")
        for p in data["parked"]:
            lines.append(
                f"  #{p['seq']} {p['target']} {p['kind']} {p['incident']} after {p['attempts']} attempts: "
                f"{p['last_error']}"
            )
    return "\n".join(lines)


@alerts_app.command("status")
def alerts_status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when any message is parked")] = False,
) -> None:
    """The outbox: messages by target and status, oldest undelivered, parked messages and their errors."""
    from monitor.alerts.outbox import outbox_status

    status = _with_db(outbox_status)
    if as_json:
        typer.echo(json.dumps(status_json(status), ensure_ascii=False, indent=2))
    else:
        typer.echo(status_text(status, datetime.now(UTC)))
    if check and status.parked:
        raise typer.Exit(code=1)


@alerts_app.command("retry")
def alerts_retry(
    target: Annotated[str | None, typer.Option(help="only this target's parked messages")] = None,
) -> None:
    """Put parked messages back in the queue (their attempts start again)."""

    from monitor.alerts.outbox import requeue

    async def main(db: Database) -> int:
        return await requeue(db, datetime.now(UTC), target)

    count = _with_db(main)
    typer.echo(f"requeued {count} parked messages")
