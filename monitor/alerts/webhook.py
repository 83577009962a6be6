"""The plain webhook sink (JSON POST signed with HMAC-SHA256), and the small HTTP client every HTTP sink uses.

A receiver checks ``X-Slawatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-Slawatch-Timestamp`` (Unix seconds; refuse old ones to stop replays) and drops duplicates by
``X-Slawatch-Alert-Id`` (also ``alert_id`` in the body): delivery is at least once.

HTTP goes through the standard library (``urllib.request`` in a worker thread): no client dependency, a
timeout on every request, and any answer but 2xx is a failure that the delivery loop retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.rules import Target

__all__ = ["DeliveryError", "WebhookSink", "http_post", "sign_webhook"]


class DeliveryError(Exception):
    """A delivery that did not succeed (the loop retries it)."""


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"POST {url.split('?')[0]}: {reason}") from None


async def http_post(url: str, body: Any, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> bytes:
    """POST JSON (``body`` is encoded unless bytes); the response body on 2xx, :class:`DeliveryError` else."""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    all_headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "slawatch-alerts/1"}
    all_headers.update(headers or {})
    status, answer = await asyncio.to_thread(_post, url, data, all_headers, timeout)
    if not 200 <= status < 300:
        raise DeliveryError(f"POST {url.split('?')[0]}: HTTP {status} {answer[:200].decode(errors='replace')}")
    return answer


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSink:
    """POSTs each message's payload as JSON to the target's URL, signed when the target has a secret."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout

    async def send(self, message: OutboxMessage) -> None:
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "X-Slawatch-Alert-Id": message.alert_id,
            "X-Slawatch-Message-Id": message.id,
            "X-Slawatch-Timestamp": timestamp,
        }
        if self.target.secret:
            headers["X-Slawatch-Signature"] = sign_webhook(self.target.secret, timestamp, body)
        await http_post(self.target.url, body, headers, self.timeout)

    async def close(self) -> None:
        return None
