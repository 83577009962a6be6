"""The Alertmanager sink: ``POST {url}/api/v2/alerts`` with one alert per incident.

Labels a NOC routes on: ``alertname="SlawatchIncident"``, ``level``, ``area``, ``scope``, ``contract`` and
``incident`` (the identity: every message of an incident updates the same Alertmanager alert). Annotations
carry a bilingual summary, channels offline, the acknowledgement and the clocks. ``startsAt`` is the
incident's start. ``endsAt`` is its end once resolved (Alertmanager then shows it resolved); while it is open,
``endsAt`` is 4 refresh periods ahead, as Prometheus does, and the delivery loop re-posts every open incident
each refresh period (:func:`refresh`): a slawatch that stops lets its alerts resolve rather than linger.
Alertmanager compares ``endsAt`` with its own clock, so these use the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.robots import LEVEL_TEXT
from monitor.alerts.rules import AlertRules, AlertState, Kind, Target, payload
from monitor.alerts.webhook import http_post
from monitor.events import format_time

__all__ = ["AlertmanagerSink", "am_alert", "refresh", "routed_to"]


def am_alert(p: Mapping[str, Any], valid_until: datetime) -> dict[str, Any]:
    """The Alertmanager v2 alert for a message payload; ``valid_until`` is ``endsAt`` while it is open."""
    clocks = p.get("clocks", {})
    zh_level, en_level = LEVEL_TEXT.get(p["level"], (str(p["level"]), str(p["level"])))
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "SlawatchIncident",
            "level": str(p["level"]),
            "area": str(p["area"]),
            "scope": str(p["scope"]),
            "contract": str(p["contract"]),
            "incident": str(p["incident"]),
        },
        "annotations": {
            "summary": f"{zh_level}故障 {p['scope']} / {en_level} incident at {p['scope']}",
            "channels_offline": str(p["channels_offline"]),
            "peak": str(p["peak"]),
            "acknowledged": f"{p.get('ack') or ''} {p.get('ack_by') or ''}".strip(),
            "response_left_s": str(clocks.get("response_left_s", "")),
            "recovery_left_s": str(clocks.get("recovery_left_s", "")),
            "alert_id": str(p["alert_id"]),
        },
        "startsAt": p["start"],
        "endsAt": p["end"] if p.get("end") else format_time(valid_until),
    }
    links = p.get("links", {})
    if links.get("incident"):
        alert["generatorURL"] = links["incident"]
    return alert


def routed_to(rules: AlertRules, target: str, state: AlertState) -> bool:
    """Whether ``target`` hears this incident (an ``always`` target of its route, or an engaged role's)."""
    route = rules.route_for(state.facts.path)
    return target in route.always or any(target in route.roles.get(role, ()) for role in state.engaged)


async def refresh(
    target: Target, rules: AlertRules, states: Iterable[AlertState], period: timedelta, timeout: float = 10.0
) -> int:
    """Re-post every open incident routed to ``target``, valid for 4 periods; returns how many were posted."""
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = [
        am_alert(payload(s.facts, f"{s.contract_id}/{s.incident_id}/state", Kind.REPEAT, now, {}, {}), now + 4 * period)
        for s in states
        if not s.ended and routed_to(rules, target.name, s)
    ]
    if alerts:
        await http_post(target.url.rstrip("/") + "/api/v2/alerts", alerts, None, timeout)
    return len(alerts)


class AlertmanagerSink:
    def __init__(self, target: Target, timeout: float = 10.0, period: timedelta = timedelta(minutes=1)) -> None:
        self.target = target
        self.timeout = timeout
        self.period = period

    async def send(self, message: OutboxMessage) -> None:
        url = self.target.url.rstrip("/") + "/api/v2/alerts"
        valid = datetime.now(UTC).replace(microsecond=0) + 4 * self.period
        body = [am_alert(message.payload, valid)]
        await http_post(url, body, {"X-Slawatch-Alert-Id": message.alert_id}, self.timeout)

    async def close(self) -> None:
        return None
