"""The service's alert hook: incidents changed by a projection become planned messages in the outbox.

:meth:`AlertHook.incidents_changed` is called by :class:`~monitor.service.Service` with the incidents a
projection write rewrites (all of them after a whole rebuild), and runs inside that write's transaction: it
compares each incident with the state last planned for it (:mod:`monitor.alerts.rules` is pure) and writes the
new states and messages beside the incident rows, so the change and the alerts it causes are stored together
or not at all (issue 8: the outbox is written in the same transaction as the change that causes them). When
that transaction fails, the service drops its projection and the next ingest rebuilds it: the rebuild's
write plans again, and because planning compares states rather than counting events, calling it again plans
nothing new.
:meth:`AlertHook.tick` plans the timers (escalation steps, repeats) that have come due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.alerts.ackpage import link_maker
from monitor.alerts.outbox import due_states, load_states_on, write_plans, write_plans_on
from monitor.alerts.rules import AlertRules, AlertState, IncidentFacts, LinkMaker, load_rules, plan_change, plan_due
from monitor.contracts import Contract
from monitor.incidents import IncidentView
from monitor.inventory import Inventory
from monitor.settings import AlertSettings
from monitor.storage.database import WRITE_OPTION, Database, translate_errors

__all__ = ["AlertHook", "Store", "facts_of", "hook_from_settings"]

#: A write that runs the given step inside its transaction (the service's projection write, see
#: :meth:`monitor.storage.repository.Repository.replace_incidents`'s ``also``).
Store = Callable[[Callable[[AsyncConnection], Awaitable[None]]], Awaitable[None]]


def facts_of(contract: Contract, view: IncidentView, inventory: Inventory) -> IncidentFacts:
    """The planner's facts of one projected incident: channels offline now, the scope's path, the limits."""
    offline = sum(1 for spans in view.intervals.values() if spans and spans[-1][1] is None)
    policy = contract.policy
    rule = policy.levels.get(view.level)
    in_county = not view.circuits or any(
        c in inventory and inventory[c].in_county is not False for c in view.circuits
    )
    path = inventory.path(view.scope) if view.scope in inventory else (view.scope,)
    return IncidentFacts(
        contract_id=contract.id,
        incident_id=view.id,
        scope=view.scope,
        path=tuple(path),
        level=view.level,
        peak=view.peak,
        offline=offline if view.end is None else 0,
        start=view.start,
        end=view.end,
        ack=view.ack,
        ack_by=view.ack_by,
        onsite=view.onsite,
        onsite_by=view.onsite_by,
        response_limit_s=rule.response_limit_s if rule else None,
        recovery_limit_s=rule.recovery_limit_s if rule else None,
        restore_limit_s=policy.restore_in_county_s if in_county else policy.restore_out_county_s,
        timezone=policy.timezone,
    )


class AlertHook:
    """Plans alerts into the outbox of ``db`` under ``rules``; ``links`` signs the one-tap ack links."""

    def __init__(
        self,
        db: Database,
        rules: AlertRules,
        *,
        links: LinkMaker | None = None,
        horizon: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.rules = rules
        self.links = links
        self.horizon = horizon
        # Planning reads a state and writes the next one: the service's changes and the delivery loop's timers
        # take turns, so neither overwrites the other's (an ack must not be undone by a repeat planned beside it).
        self._lock = asyncio.Lock()

    async def incidents_changed(
        self,
        contract: Contract,
        incidents: Sequence[IncidentView],
        inventory: Inventory,
        now: datetime,
        store: Store | None = None,
    ) -> int:
        """Plan for incidents the projection rewrote; returns how many messages were written.

        With ``store`` (the projection write: it runs the planning it is given inside its own transaction, after
        writing the incidents) the states and messages are read and written in that transaction, so an incident
        change and the alerts it causes are stored together or not at all. ``store`` is called even with no
        incidents (a whole projection may be empty). Without it, they are written in a transaction of their own.
        The lock is taken before the transaction begins, as :meth:`tick` does, so the two never wait on each
        other the wrong way round (SQLite's ``BEGIN IMMEDIATE`` holds the write lock)."""
        written = 0

        async def plan(conn: AsyncConnection) -> None:
            nonlocal written
            written = await self._plan_changes(conn, contract, incidents, inventory, now)

        async with self._lock:
            if store is not None:
                await store(plan)
            elif incidents:
                with translate_errors("write the alert outbox", self.db.url):
                    async with self.db.engine.connect() as conn:
                        await conn.execution_options(**{WRITE_OPTION: True})
                        async with conn.begin():
                            await plan(conn)
        return written

    async def _plan_changes(
        self,
        conn: AsyncConnection,
        contract: Contract,
        incidents: Sequence[IncidentView],
        inventory: Inventory,
        now: datetime,
    ) -> int:
        if not incidents:
            return 0
        stored = await load_states_on(conn, contract.id, (v.id for v in incidents))
        states: list[AlertState] = []
        planned = []
        for view in incidents:
            previous = stored.get(view.id)
            alerts, state = plan_change(
                self.rules, previous, facts_of(contract, view, inventory), now, links=self.links,
                horizon=self.horizon,
            )
            planned.extend(alerts)
            if state is not None and state != previous:
                states.append(state)
        await write_plans_on(conn, states, planned, now)
        return len(planned)

    async def tick(self, now: datetime) -> int:
        """Plan the escalation steps and repeats that have come due; returns how many messages were written."""
        async with self._lock:
            states: list[AlertState] = []
            planned = []
            for state in await due_states(self.db, now):
                alerts, new = plan_due(self.rules, state, now, links=self.links)
                planned.extend(alerts)
                states.append(new)
            await write_plans(self.db, states, planned, now)
            return len(planned)


def hook_from_settings(db: Database, settings: AlertSettings) -> AlertHook | None:
    """The hook configured by ``SLAWATCH_ALERT_*``, or None when no rules file is set (no alerts)."""
    if settings.rules_file is None:
        return None
    rules = load_rules(settings.rules_file)
    links = None
    if settings.secret:
        links = link_maker(settings.secret, settings.public_url, timedelta(seconds=settings.ack_ttl_s))
    return AlertHook(db, rules, links=links, horizon=timedelta(seconds=settings.horizon_s))
