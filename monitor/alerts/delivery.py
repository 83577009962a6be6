"""The delivery loop: at least once, in order per target and incident, retried with backoff, parked at last.

Each round (every ``poll_s``): the hook plans the timers that came due (escalation steps, repeats), then every
deliverable group (:func:`monitor.alerts.outbox.deliverable`) is sent in ``seq`` order, targets in parallel,
one target's groups one after another. A message is marked sent only after its sink succeeded (the broker's
PUBACK, a 2xx answer), so a crash in between sends it again: receivers drop duplicates by the alert id. A
failure counts an attempt and holds the rest of its group back until the retry (exponential backoff); after
``max_attempts`` the message is parked (reported by ``slawatch alerts status`` and
:func:`~monitor.alerts.outbox.outbox_counts`) and no longer holds its group back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.alerts.alertmanager import AlertmanagerSink, refresh
from monitor.alerts.hook import AlertHook
from monitor.alerts.mqtt import MqttSink
from monitor.alerts.outbox import OutboxMessage, deliverable, mark_failed, mark_sent, open_states
from monitor.alerts.robots import RobotSink
from monitor.alerts.rules import AlertRules, Target, TargetKind
from monitor.alerts.webhook import WebhookSink
from monitor.settings import AlertSettings
from monitor.storage.database import Database

__all__ = ["Delivery", "RoundResult", "Sink", "make_sink"]

log = logging.getLogger("slawatch.alerts")


class Sink(Protocol):
    async def send(self, message: OutboxMessage) -> None: ...

    async def close(self) -> None: ...


def make_sink(target: Target, timeout: float, am_period: timedelta = timedelta(minutes=1)) -> Sink:
    if target.kind is TargetKind.MQTT:
        return MqttSink(target, timeout)
    if target.kind is TargetKind.WEBHOOK:
        return WebhookSink(target, timeout)
    if target.kind is TargetKind.ALERTMANAGER:
        return AlertmanagerSink(target, timeout, am_period)
    if target.kind is TargetKind.APPRISE:
        from monitor.alerts.apprise_sink import AppriseSink  # apprise is imported only when a target needs it

        return AppriseSink(target, timeout)
    return RobotSink(target, timeout)


@dataclass(slots=True)
class RoundResult:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    parked: int = 0


class Delivery:
    """Delivers the outbox of ``db`` to the targets of ``rules``; ``hook`` (optional) plans the timers."""

    def __init__(
        self,
        db: Database,
        rules: AlertRules,
        settings: AlertSettings | None = None,
        *,
        hook: AlertHook | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.rules = rules
        self.settings = settings or AlertSettings()
        self.hook = hook
        self.clock = clock or (lambda: datetime.now(UTC))
        self._sinks: dict[str, Sink] = {}
        self._am_period = timedelta(seconds=self.settings.alertmanager_refresh_s)
        self._am_refreshed: datetime | None = None  # wall clock: Alertmanager's endsAt is on its own clock

    def sink(self, name: str) -> Sink | None:
        if name not in self._sinks:
            target = self.rules.targets.get(name)
            if target is None:
                return None
            self._sinks[name] = make_sink(target, self.settings.timeout_s, self._am_period)
        return self._sinks[name]

    async def round(self) -> RoundResult:
        """One pass: plan due timers, then send what may go now."""
        result = RoundResult()
        if self.hook is not None:
            result.planned = await self.hook.tick(self.clock())
        groups = await deliverable(self.db, self.clock())
        by_target: dict[str, list[list[OutboxMessage]]] = {}
        for group in groups:
            by_target.setdefault(group[0].target, []).append(group)
        await asyncio.gather(*(self._target(t, gs, result) for t, gs in by_target.items()))
        await self._refresh_alertmanager()
        return result

    async def _refresh_alertmanager(self) -> None:
        """Every refresh period, re-post the open incidents to each Alertmanager target (their ``endsAt`` moves
        on); a failure is logged and tried again next round."""
        targets = [t for t in self.rules.targets.values() if t.kind is TargetKind.ALERTMANAGER]
        wall = datetime.now(UTC)
        if not targets or (self._am_refreshed is not None and wall - self._am_refreshed < self._am_period):
            return
        states = await open_states(self.db)
        failed = False
        for target in targets:
            try:
                await refresh(target, self.rules, states, self._am_period, self.settings.timeout_s)
            except Exception as exc:  # the next round tries again
                failed = True
                log.warning("alertmanager refresh failed", extra={"target": target.name, "error": str(exc)})
        if not failed:
            self._am_refreshed = wall

    async def _target(self, name: str, groups: list[list[OutboxMessage]], result: RoundResult) -> None:
        sink = self.sink(name)
        s = self.settings
        for group in groups:
            for message in group:
                try:
                    if sink is None:
                        raise LookupError(f"no target named {name!r} in the alert rules")
                    await asyncio.wait_for(sink.send(message), s.timeout_s)
                except Exception as exc:  # any failure of a sink is retried, then parked
                    error = f"{type(exc).__name__}: {exc}"
                    parked = await mark_failed(
                        self.db,
                        message,
                        error,
                        self.clock(),
                        max_attempts=s.max_attempts,
                        backoff_s=s.backoff_s,
                        backoff_max_s=s.backoff_max_s,
                    )
                    result.failed += 1
                    result.parked += parked
                    log.log(
                        logging.ERROR if parked else logging.WARNING,
                        "alert parked" if parked else "alert delivery failed",
                        extra={"target": name, "alert": message.alert_id, "attempt": message.attempts + 1,
                               "error": error},
                    )
                    return  # the target is likely down: its other groups wait for the next round
                await mark_sent(self.db, message.seq, self.clock())
                result.sent += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``poll_s`` until ``stop`` is set; a round that fails (database down) is logged and the
        next one tries again."""
        try:
            while not stop.is_set():
                try:
                    await self.round()
                except Exception as exc:
                    log.exception("alert delivery round failed", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.poll_s)
        finally:
            await self.close()

    async def close(self) -> None:
        sinks, self._sinks = self._sinks, {}
        for sink in sinks.values():
            with contextlib.suppress(Exception):
                await sink.close()


def sinks_of(delivery: Delivery) -> Mapping[str, Sink]:
    """The sinks opened so far (for tests and diagnostics)."""
    return dict(delivery._sinks)
