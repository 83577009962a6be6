"""What the alert tests set up alike: the small inventory, a settable clock, and a service whose changes feed
an :class:`AlertHook`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from monitor.alerts.hook import AlertHook
from monitor.alerts.rules import AlertRules, LinkMaker
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.storage import Database

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def alerting_service(
    db: Database, rules: AlertRules, clock: Callable[[], datetime], links: LinkMaker | None = None
) -> tuple[Service, AlertHook]:
    """A service on ``clock`` with the small inventory imported, its changes planned by a hook on ``rules``."""
    hook = AlertHook(db, rules, links=links)
    service = Service(db, clock=clock, alerts=hook)
    await service.import_inventory(load_inventory(SMALL))
    return service, hook
