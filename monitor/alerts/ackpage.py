"""Signed, expiring, single-incident tokens for the one-tap acknowledgement link, and the link maker.

A token is ``base64url(JSON {"c": contract, "i": incident, "e": expiry epoch seconds})`` ``.``
``base64url(HMAC-SHA256(server secret, first part))``. It names one incident of one contract; anyone holding
it may acknowledge that incident (and nothing else) until it expires. No login: the link is the credential,
so it travels only inside the crew's own channels.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from monitor.alerts.rules import LinkMaker

__all__ = ["AckToken", "AckTokenError", "link_maker", "make_token", "read_token"]


class AckTokenError(Exception):
    """A token refused: ``status`` 403 (forged, malformed) or 410 (expired)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class AckToken:
    contract_id: str
    incident_id: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: str, contract_id: str, incident_id: str, expires: datetime) -> str:
    body = _b64(
        json.dumps(
            {"c": contract_id, "i": incident_id, "e": int(expires.timestamp())}, separators=(",", ":")
        ).encode()
    )
    return f"{body}.{_mac(secret, body)}"


def read_token(secret: str, token: str, now: datetime) -> AckToken:
    """The token's incident, if its signature is the server's and it has not expired."""
    body, dot, sig = token.partition(".")
    if not dot or not body or not sig:
        raise AckTokenError("this acknowledgement link is not valid (malformed)", 403)
    try:
        ok = hmac.compare_digest(_mac(secret, body), sig)
    except (TypeError, ValueError, UnicodeEncodeError):
        ok = False
    if not ok:
        raise AckTokenError("this acknowledgement link is not valid (bad signature)", 403)
    try:
        data = json.loads(_unb64(body))
        token_data = AckToken(str(data["c"]), str(data["i"]), datetime.fromtimestamp(int(data["e"]), UTC))
    except (ValueError, KeyError, TypeError, OverflowError):
        raise AckTokenError("this acknowledgement link is not valid (malformed)", 403) from None
    if token_data.expires <= now:
        raise AckTokenError("this acknowledgement link has expired; acknowledge in the API or ask for a new one", 410)
    return token_data


def link_maker(secret: str, public_url: str, ttl: timedelta) -> LinkMaker:
    """Links for a message: ``ack`` (the one-tap page, signed until ``now + ttl``) and ``incident`` (the API)."""
    base = public_url.rstrip("/")

    def links(contract_id: str, incident_id: str, now: datetime) -> Mapping[str, str]:
        token = make_token(secret, contract_id, incident_id, now + ttl)
        return {
            "ack": f"{base}/ack/{token}",
            "incident": f"{base}/api/v1/contracts/{quote(contract_id, safe='')}/incidents?open=true",
        }

    return links
