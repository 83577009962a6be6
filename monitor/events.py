"""Events: the one input language of the engine, shared by replay files, the API and the live collectors.

Each event is a frozen dataclass that validates itself; :func:`parse_event` turns one JSON object into an
event (naming the field that is wrong), :func:`read_jsonl` reads a JSON Lines file (naming file and line).
Every event has a deterministic :attr:`~BaseEvent.id` (a hash of its canonical JSON without ``known_at``), so
that ingesting the same event twice is one event whenever it arrives (the first arrival stands), and a
:attr:`~BaseEvent.known` time: when it becomes known to the engine (events are processed in that order).
Any event may carry ``known_at`` (default: its dated time ``at``, for importing history): a poll confirmation is
dated at the first poll of its run and known when the run completes (SPEC §2), and an event posted to the API is
known when the API received it (SPEC R8), whatever time it is dated.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

from monitor.errors import EventError, shown
from monitor.inventory import validate_node_id


class NodeState(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class ExclusionStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


FINDING_ITEMS = ("4a", "4b", "4c", "4d", "4e", "5")


#: Every time slawatch stores lies in ``[EARLIEST, LATEST)`` (SPEC R10).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: The most UTF-8 bytes a free-text field (text, reason, cause, note, by, evidence, incident) may hold (R10).
MAX_TEXT_BYTES = 4096
#: Points are finite decimals in [0, MAX_POINTS] with at most MAX_POINTS_DIGITS significant digits (R10).
MAX_POINTS = Decimal(100)
MAX_POINTS_DIGITS = 28


def check_time(t: datetime, field: str) -> datetime:
    """``t`` (aware) in UTC if it lies in ``[EARLIEST, LATEST)``; an :class:`EventError` naming ``field`` otherwise."""
    try:
        utc = t.astimezone(UTC)
    except (OverflowError, ValueError):  # 0001-01-01 east of UTC, 9999-12-31 west of it
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise EventError(
            f"{t.isoformat()} is out of range: times lie in [{format_time(EARLIEST)}, {format_time(LATEST)})",
            field=field,
        )
    return utc


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_text(value: str, field: str) -> str:
    """``value`` if it is at most :data:`MAX_TEXT_BYTES` of UTF-8, without NUL (PostgreSQL stores none) or lone
    surrogates (not Unicode text); an :class:`EventError` naming ``field`` otherwise."""
    if len(value) > MAX_TEXT_BYTES or len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise EventError(f"text longer than {MAX_TEXT_BYTES} bytes of UTF-8", field=field)
    if _UNSTORABLE.search(value):
        raise EventError("text holds a NUL character or a lone surrogate (not storable text)", field=field)
    return value


def check_points(value: Decimal, field: str = "points") -> Decimal:
    """``value`` if it is a finite decimal in [0, 100] (at most 28 significant digits); EventError otherwise."""
    if not value.is_finite():
        raise EventError(f"points must be a finite number, got {value}", field=field)
    if not Decimal(0) <= value <= MAX_POINTS:
        raise EventError(f"points must lie in [0, {MAX_POINTS}], got {value}", field=field)
    if len(value.as_tuple().digits) > MAX_POINTS_DIGITS:
        raise EventError(f"points have more than {MAX_POINTS_DIGITS} significant digits", field=field)
    return value


def check_number(value: float, field: str, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` if it is finite and in ``[low, high]``; an :class:`EventError` naming ``field`` otherwise."""
    if not math.isfinite(value) or not low <= value <= high:
        raise EventError(f"expected a finite number in [{low}, {high}], got {value!r}", field=field)
    return value


def parse_time(value: object, tz: tzinfo | None, field: str) -> datetime:
    """An RFC 3339 time in ``[EARLIEST, LATEST)``; without an offset it is read in ``tz`` (an error when ``tz`` is
    None). Returns UTC. Errors are :class:`EventError` naming ``field``."""
    if not isinstance(value, str):
        raise EventError(f"expected an RFC 3339 time string, got {shown(value)}", field=field)
    text = value.strip()
    if len(text) > 64 or not text.isascii():
        raise EventError(f"{shown(value)} is not an RFC 3339 time", field=field)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"{value!r} is not an RFC 3339 time", field=field) from None
    if t.tzinfo is None:
        if tz is None:
            raise EventError(
                f"{value!r} has no offset and several contracts (time zones) could apply", field=field
            )
        t = t.replace(tzinfo=tz)
    return check_time(t, field)


def format_time(t: datetime) -> str:
    """UTC, RFC 3339, to the microsecond only when needed."""
    t = t.astimezone(UTC)
    if t.microsecond:
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The dataclass fields of an event class, in order, looked up once per class (``dataclasses.fields`` costs
    ~3 µs per call, and every event's validation asked for them twice)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseEvent:
    type: ClassVar[str]
    at: datetime
    known_at: datetime | None = None
    # The id, computed once (a hash of the canonical JSON, asked for many times per event on a replay).
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
                raise EventError("time has no offset", field=name)
        if self.known_at is not None and self.known_at < self.at:
            raise EventError("an event cannot be known before the time it is dated ('at')", field="known_at")

    @property
    def known(self) -> datetime:
        """When the event becomes known to the engine (its processing order): ``known_at``, else ``at``."""
        return self.known_at if self.known_at is not None else self.at

    def received(self, t: datetime) -> Self:
        """This event known at ``t`` (its receipt, SPEC R8); its id does not change."""
        return replace(self, known_at=t)

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object (times in UTC); parsing it gives the same event."""
        out: dict[str, Any] = {"type": self.type}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is None or name == "_id":
                continue
            key = {"start": "from", "end": "to"}.get(name, name)
            if isinstance(value, datetime):
                out[key] = format_time(value)
            elif isinstance(value, Decimal):
                out[key] = str(value)
            elif isinstance(value, StrEnum):
                out[key] = value.value
            else:
                out[key] = value
        return out

    @property
    def id(self) -> str:
        """Deterministic id: sha256 of the canonical JSON without ``known_at``, 32 hex digits."""
        if self._id is None:
            content = self.to_json()
            content.pop("known_at", None)
            blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            object.__setattr__(self, "_id", hashlib.sha256(blob.encode()).hexdigest()[:32])
        assert self._id is not None
        return self._id


#: The free-text fields of events, bounded to MAX_TEXT_BYTES each (SPEC R10).
TEXT_FIELDS = frozenset({"text", "reason", "cause", "note", "by", "evidence", "incident"})


def _check_bounds(event: BaseEvent) -> None:
    """SPEC R10 on one event: times in range, free text bounded, points and measurements finite and in range."""
    for field_name in _field_names(type(event)):
        value = getattr(event, field_name)
        name = {"start": "from", "end": "to"}.get(field_name, field_name)
        if isinstance(value, datetime):
            check_time(value, name)
        elif isinstance(value, str) and field_name in TEXT_FIELDS:
            check_text(value, name)
        elif isinstance(value, Decimal):
            check_points(value, name)
    if isinstance(event, PollEvent):
        if event.rtt_ms is not None:
            check_number(event.rtt_ms, "rtt_ms")
        if event.loss is not None:
            check_number(event.loss, "loss", high=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateEvent(BaseEvent):
    """A confirmed state change of ``node``, dated ``at``; ``known_at`` is when it was confirmed (default ``at``)."""

    type: ClassVar[str] = "state"
    node: str
    state: NodeState

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        _check_bounds(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollEvent(BaseEvent):
    """A raw poll result: ``ok`` when the node answered; ``rtt_ms`` and ``loss`` (0..1) when measured."""

    type: ClassVar[str] = "poll"
    node: str
    ok: bool
    rtt_ms: float | None = None
    loss: float | None = None

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        _check_bounds(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetedEvent(BaseEvent):
    """An event that names its incident by id, or a node (meaning depends on the type, SPEC §3–4)."""

    node: str | None = None
    incident: str | None = None

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        if (self.node is None) == (self.incident is None):
            raise EventError("name exactly one of 'node' and 'incident'", field="node")
        _check_bounds(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class AckEvent(TargetedEvent):
    type: ClassVar[str] = "ack"
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OnsiteEvent(TargetedEvent):
    type: ClassVar[str] = "onsite"
    by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExplanationEvent(TargetedEvent):
    type: ClassVar[str] = "explanation"
    text: str = ""
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExclusionEvent(TargetedEvent):
    type: ClassVar[str] = "exclusion"
    status: ExclusionStatus
    cause: str = ""
    evidence: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceEvent(BaseEvent):
    """Planned work over ``scope`` during ``[start, end)``; ``at`` is when it was declared (default ``start``)."""

    type: ClassVar[str] = "maintenance"
    start: datetime
    end: datetime
    scope: str
    reason: str = ""

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        if self.end <= self.start:
            raise EventError("'to' must be after 'from'", field="to")
        _check_bounds(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingEvent(BaseEvent):
    """A manual finding under assessment item ``item`` costing ``points``."""

    type: ClassVar[str] = "finding"
    item: str
    points: Decimal
    note: str = ""
    by: str | None = None
    evidence: str | None = None

    def __post_init__(self) -> None:
        BaseEvent.__post_init__(self)
        if self.item not in FINDING_ITEMS:
            raise EventError(f"{shown(self.item)} is not one of {', '.join(FINDING_ITEMS)}", field="item")
        _check_bounds(self)


Event = (
    StateEvent
    | PollEvent
    | AckEvent
    | OnsiteEvent
    | ExplanationEvent
    | ExclusionEvent
    | MaintenanceEvent
    | FindingEvent
)

EVENT_TYPES: dict[str, type[BaseEvent]] = {
    cls.type: cls
    for cls in (
        StateEvent,
        PollEvent,
        AckEvent,
        OnsiteEvent,
        ExplanationEvent,
        ExclusionEvent,
        MaintenanceEvent,
        FindingEvent,
    )
}

# Which JSON keys each type takes, their kind, and whether required.
_SPEC: dict[str, dict[str, tuple[str, bool]]] = {
    "state": {
        "at": ("time", True),
        "node": ("node", True),
        "state": ("state", True),
        "known_at": ("time", False),
    },
    "poll": {
        "at": ("time", True),
        "known_at": ("time", False),
        "node": ("node", True),
        "ok": ("bool", True),
        "rtt_ms": ("float", False),
        "loss": ("float", False),
    },
    "ack": {
        "at": ("time", True),
        "known_at": ("time", False),
        "node": ("node", False),
        "incident": ("str", False),
        "by": ("str", False),
    },
    "onsite": {
        "at": ("time", True),
        "known_at": ("time", False),
        "node": ("node", False),
        "incident": ("str", False),
        "by": ("str", False),
    },
    "explanation": {
        "at": ("time", True),
        "known_at": ("time", False),
        "node": ("node", False),
        "incident": ("str", False),
        "text": ("str", True),
        "by": ("str", False),
    },
    "exclusion": {
        "at": ("time", True),
        "known_at": ("time", False),
        "node": ("node", False),
        "incident": ("str", False),
        "status": ("status", True),
        "cause": ("str", False),
        "evidence": ("str", False),
        "by": ("str", False),
    },
    "maintenance": {
        "at": ("time", False),
        "known_at": ("time", False),
        "from": ("time", True),
        "to": ("time", True),
        "scope": ("node", True),
        "reason": ("str", False),
    },
    "finding": {
        "at": ("time", True),
        "known_at": ("time", False),
        "item": ("str", True),
        "points": ("decimal", True),
        "note": ("str", False),
        "by": ("str", False),
        "evidence": ("str", False),
    },
}


_STATES = frozenset(s.value for s in NodeState)
_STATUSES = frozenset(s.value for s in ExclusionStatus)


def _convert(kind: str, value: object, key: str, tz: tzinfo | None) -> object:
    if kind == "time":
        return parse_time(value, tz, key)
    if kind == "node":
        if not isinstance(value, str):
            raise EventError(f"expected a node id, got {shown(value)}", field=key)
        try:
            return validate_node_id(value, key)
        except ValueError as exc:
            raise EventError(str(exc), field=key) from None
    if kind == "str":
        if not isinstance(value, str):
            raise EventError(f"expected a string, got {shown(value)}", field=key)
        return check_text(value, key)
    if kind == "bool":
        if not isinstance(value, bool):
            raise EventError(f"expected true or false, got {shown(value)}", field=key)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventError(f"expected a number, got {shown(value)}", field=key)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a float's range
            raise EventError(f"expected a finite number, got {shown(value)}", field=key) from None
        if not math.isfinite(number):
            raise EventError(f"expected a finite number, got {shown(value)}", field=key)
        return number
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise EventError(f"expected a number, got {shown(value)}", field=key)
        if isinstance(value, float) and not math.isfinite(value):
            raise EventError(f"expected a finite number, got {shown(value)}", field=key)
        if isinstance(value, str) and len(value) > 64:
            raise EventError(f"expected a number, got {shown(value)}", field=key)
        try:
            return check_points(Decimal(value if isinstance(value, str) else str(value)), key)
        except (InvalidOperation, ValueError):
            raise EventError(f"expected a number, got {shown(value)}", field=key) from None
    if kind == "state":
        if isinstance(value, str) and value in _STATES:
            return NodeState(value)
        raise EventError(f"expected 'down', 'up' or 'unknown', got {shown(value)}", field=key)
    if kind == "status":
        if isinstance(value, str) and value in _STATUSES:
            return ExclusionStatus(value)
        raise EventError(f"expected 'requested', 'approved' or 'rejected', got {shown(value)}", field=key)
    raise AssertionError(kind)


def parse_event(obj: object, tz: tzinfo | None = UTC, where: str | None = None) -> Event:
    """Build an event from a decoded JSON object; errors name ``where`` and the field."""
    try:
        if not isinstance(obj, dict):
            raise EventError("an event is a JSON object")
        etype = obj.get("type")
        if not isinstance(etype, str) or etype not in _SPEC:
            raise EventError(f"unknown event type {shown(etype)} (one of {', '.join(_SPEC)})", field="type")
        spec = _SPEC[etype]
        unknown = sorted(set(obj) - set(spec) - {"type"})
        if unknown:
            raise EventError(f"unexpected field for a {etype} event", field=unknown[0])
        kwargs: dict[str, object] = {}
        for key, (kind, required) in spec.items():
            if key not in obj or obj[key] is None:
                if required:
                    raise EventError("missing", field=key)
                continue
            name = {"from": "start", "to": "end"}.get(key, key)
            kwargs[name] = _convert(kind, obj[key], key, tz)
        if etype == "maintenance" and "at" not in kwargs:
            kwargs["at"] = kwargs["start"]
        cls = EVENT_TYPES[etype]
        try:
            return cls(**kwargs)  # type: ignore[return-value,arg-type]
        except (TypeError, ValueError) as exc:
            raise EventError(str(exc)) from None
    except EventError as exc:
        raise EventError(exc.message, where=where, field=exc.field) from None


def read_jsonl(path: Path, tz: tzinfo | None = UTC) -> list[tuple[str, Event]]:
    """Read a JSON Lines event file as ``(file:line, event)``; errors name file, line and field.

    Lines must be in time order (by the time they become known).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EventError(f"cannot read ({exc.strerror})", where=str(path)) from None
    except UnicodeDecodeError:
        raise EventError("not UTF-8 text", where=str(path)) from None
    return list(iter_jsonl(text.splitlines(), tz, str(path)))


def iter_jsonl(lines: Iterable[str], tz: tzinfo | None, name: str) -> Iterator[tuple[str, Event]]:
    previous: datetime | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventError(f"not JSON ({exc.msg})", where=where) from None
        event = parse_event(obj, tz, where)
        if previous is not None and event.known < previous:
            raise EventError(
                f"events must be in time order: {format_time(event.known)} is before the previous line's "
                f"{format_time(previous)}",
                where=where,
                field="at",
            )
        previous = event.known
        yield where, event
