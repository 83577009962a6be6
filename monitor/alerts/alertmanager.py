"""The Alertmanager sink: ``POST {url}/api/v2/alerts`` with one alert per incident.

Labels a NOC routes on: ``alertname="SlawatchIncident"``, ``level``, ``area``, ``scope``, ``contract`` and
``incident`` (the identity: every message of an incident updates the same Alertmanager alert). Annotations
carry the bilingual summary, channels offline and the clocks. ``startsAt`` is the incident's start;
``endsAt`` is its end once resolved (Alertmanager then shows it resolved); while open, ``endsAt`` is left to
Alertmanager's ``resolve_timeout``, and each message (repeats included) refreshes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.robots import title
from monitor.alerts.rules import Target
from monitor.alerts.webhook import http_post

__all__ = ["AlertmanagerSink", "am_alert"]


def am_alert(p: Mapping[str, Any]) -> dict[str, Any]:
    """The Alertmanager v2 alert for a message payload."""
    clocks = p.get("clocks", {})
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
            "summary": title(p),
            "channels_offline": str(p["channels_offline"]),
            "peak": str(p["peak"]),
            "acknowledged": str(p.get("ack") or ""),
            "response_left_s": str(clocks.get("response_left_s", "")),
            "recovery_left_s": str(clocks.get("recovery_left_s", "")),
            "alert_id": str(p["alert_id"]),
        },
        "startsAt": p["start"],
    }
    links = p.get("links", {})
    if links.get("incident"):
        alert["generatorURL"] = links["incident"]
    if p.get("end"):
        alert["endsAt"] = p["end"]
    return alert


class AlertmanagerSink:
    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout

    async def send(self, message: OutboxMessage) -> None:
        url = self.target.url.rstrip("/") + "/api/v2/alerts"
        await http_post(url, [am_alert(message.payload)], {"X-Slawatch-Alert-Id": message.alert_id}, self.timeout)

    async def close(self) -> None:
        return None
