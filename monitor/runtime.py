"""The one place that wires storage and the service from settings, for every shell (CLI, API, live service).

``open_service(settings)`` creates the data directory, connects the database, upgrades it to the newest
migration, reads the default policy (``SLAWATCH_POLICY_FILE``) and yields a :class:`~monitor.service.Service`;
the database is closed on the way out, whatever happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from monitor.confirmation import ConfirmationSettings
from monitor.policy import DEFAULT_POLICY, load_policy
from monitor.report_cache import ReportCache
from monitor.service import Service
from monitor.settings import Settings
from monitor.storage.database import Database


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Database (connected, upgraded) and service built from ``settings``; closed on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url())
    try:
        await db.connect()
        await db.upgrade()
        policy = load_policy(settings.policy_file) if settings.policy_file else DEFAULT_POLICY
        yield Service(
            db,
            default_policy=policy,
            confirmation=ConfirmationSettings(settings.down_after, settings.up_after),
            report_cache=ReportCache(entries=settings.report_cache_entries, max_age_s=settings.report_cache_s),
        )
    finally:
        await db.close()
