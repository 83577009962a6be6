"""Token lifetimes: ``--expires 30d`` (CLI) and ``expires`` (API) name a duration from now (``90m``, ``12h``,
``30d``, ``8w``) or an RFC 3339 time; an expired token is refused (401) like a revoked one."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from monitor.errors import EventError
from monitor.events import check_time, parse_time

_DURATION = re.compile(r"([0-9]{1,6})([mhdw])")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest lifetime a token may be given (ten years).
MAX_LIFETIME = timedelta(days=3650)
#: The name of a token: a person or a machine (shown in the audit log).
NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def parse_expiry(text: str, now: datetime, tz: tzinfo | None, field: str = "expires") -> datetime:
    """When a token given ``text`` at ``now`` expires (UTC): after a duration, or at an RFC 3339 time; it must
    lie after ``now`` and within :data:`MAX_LIFETIME` of it. Errors are EventError (422) naming ``field``."""
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is not None:
        at = now + timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
        check_time(at, field)
    else:
        try:
            at = parse_time(value, tz, field)
        except EventError:
            raise EventError(
                f"{value[:40]!r} is neither a duration (90m, 12h, 30d, 8w) nor an RFC 3339 time", field=field
            ) from None
    if at <= now:
        raise EventError("a token's expiry must lie in the future", field=field)
    if at - now > MAX_LIFETIME:
        raise EventError(f"a token lives at most {MAX_LIFETIME.days} days", field=field)
    return at
