"""The long tail of channels (email, SMS gateways, Telegram and 100+ more) through apprise.

A target of kind ``apprise`` names any apprise URL (``mailto://``, ``tgram://``, ``json://host:port/path``...);
``{secret}`` in it is replaced by the target's secret (``secret_env``), so credentials need not sit in the rules
file. Each message is the robots' title and bilingual markdown body (:func:`monitor.alerts.robots.markdown`,
with the alert id as plain text, since not every service takes HTML), sent with ``Apprise.async_notify`` (its
blocking services run in apprise's worker threads, not on the event loop), bounded by the delivery timeout.
A notification apprise reports as not delivered raises :class:`~monitor.alerts.webhook.DeliveryError` with
apprise's own reason: the delivery loop retries it with backoff, then parks it.

URLs carry credentials: errors and logs name the target by apprise's privacy form of its URL, never the URL.
"""

from __future__ import annotations

from typing import Any

import apprise

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.robots import markdown, title
from monitor.alerts.rules import Target, TargetKind
from monitor.alerts.webhook import DeliveryError

__all__ = ["AppriseSink", "check_url", "notify_type"]


def _url(target: Target) -> str:
    return target.url.replace("{secret}", target.secret) if target.secret else target.url


def _service(target: Target) -> Any:
    """apprise's plugin instance for the target's URL (None: not a URL apprise can use). Parsing only."""
    return apprise.Apprise.instantiate(_url(target))


def _private(service: Any) -> str:
    """The service's URL with its secrets hidden and without its options."""
    return str(service.url(privacy=True)).split("?", 1)[0]


def check_url(target: Target) -> str | None:
    """Why the target's URL is not one apprise can send to, or None when it is (nothing is contacted)."""
    if "{secret}" in target.url and not target.secret:
        return "the URL has {secret} but the target has no secret (secret or secret_env)"
    if _service(target) is None:
        scheme = target.url.split("://", 1)[0]
        return f"not an apprise URL apprise can use (scheme {scheme!r}, or its required parts are missing)"
    return None


def notify_type(payload: dict[str, Any]) -> apprise.NotifyType:
    """Resolved: success; level 1: failure (the most urgent look); else a warning."""
    if payload.get("kind") == "resolved":
        return apprise.NotifyType.SUCCESS
    return apprise.NotifyType.FAILURE if payload.get("level") == 1 else apprise.NotifyType.WARNING


class AppriseSink:
    """Sends each message to one apprise URL."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        if target.kind is not TargetKind.APPRISE:
            raise ValueError(f"target {target.name} is not an apprise target")
        self.target = target
        self.timeout = timeout
        self._apprise = apprise.Apprise()
        service = _service(target)  # checked by load_rules; None here only for a Target built by hand
        self.where = target.url.split("://", 1)[0] + "://" if service is None else _private(service)
        if service is not None:
            self._apprise.add(service)

    async def send(self, message: OutboxMessage) -> None:
        if not self._apprise:
            raise DeliveryError(f"target {self.target.name}: not an apprise URL apprise can use")
        p = message.payload
        result = await self._apprise.async_notify(
            body=markdown(p, self.target.mentions, html=False),
            title=title(p),
            notify_type=notify_type(p),
            body_format=apprise.NotifyFormat.MARKDOWN,
            timeout=self.timeout,
        )
        if not result:
            reasons = "; ".join(e.message for e in result.logs()) or f"status {result.status.name}"
            raise DeliveryError(f"apprise could not notify {self.where}: {reasons}")

    async def close(self) -> None:
        return None
