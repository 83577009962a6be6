"""SPEC R10 in the event language: what an event may hold, for replay files and the API alike.

Points are finite decimals in [0, 100]; times lie in [2000-01-01, 2100-01-01) UTC; free text is at most 4 KiB of
UTF-8; poll measurements are finite; month keys are ASCII ``YYYY-MM``. Every refusal is an :class:`EventError`
naming the field (never an OverflowError, a TypeError or a decimal signal).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from monitor.assessment import Month
from monitor.errors import EventError
from monitor.events import (
    EARLIEST,
    LATEST,
    MAX_TEXT_BYTES,
    FindingEvent,
    MaintenanceEvent,
    PollEvent,
    StateEvent,
    parse_event,
    parse_time,
    read_jsonl,
)
from monitor.policy import DEFAULT_POLICY

CST = timezone(timedelta(hours=8))
AT = "2026-10-20T15:00:00+08:00"
FINDING: dict[str, Any] = {"type": "finding", "at": AT, "item": "4c", "points": 5, "note": "valid complaint"}


def refused(obj: object, field: str) -> EventError:
    with pytest.raises(EventError) as caught:
        parse_event(obj, CST, where="line 1")
    assert caught.value.field == field, caught.value
    assert caught.value.where == "line 1"
    return caught.value


# ---------------------------------------------------------------------------------------- points
@pytest.mark.parametrize(
    "points",
    [float("inf"), float("-inf"), float("nan"), 1e309, -0.5, 101, "1e400", "Infinity", "NaN", "sNaN", "-1",
     "100.0000000000000000000000000001", "abc", "", True, None, [5], {"x": 5}, 10**400, "1" * 100],
)
def test_points_outside_finite_0_to_100_are_refused(points: object) -> None:
    refused({**FINDING, "points": points}, "points")


@pytest.mark.parametrize("points", [0, 5, 100, "2.5", 0.5, "100", "1e1"])
def test_points_in_range_are_kept_exactly(points: object) -> None:
    event = parse_event({**FINDING, "points": points}, CST)
    assert isinstance(event, FindingEvent)
    assert event.points == Decimal(str(points))


def test_json_tokens_nan_and_infinity_in_a_file_are_refused(tmp_path: Path) -> None:
    for token in ("Infinity", "-Infinity", "NaN", "1e309", "1" + "0" * 400):
        path = tmp_path / "f.jsonl"
        path.write_text('{"type":"finding","at":"2026-10-20T15:00:00+08:00","item":"4c","points":' + token + "}\n")
        with pytest.raises(EventError) as caught:
            read_jsonl(path, CST)
        assert caught.value.field == "points", token
        assert caught.value.where == f"{path}:1"


def test_the_dataclass_itself_refuses_out_of_range_points() -> None:
    at = datetime(2026, 10, 20, tzinfo=UTC)
    for points in (Decimal("Infinity"), Decimal("NaN"), Decimal("sNaN"), Decimal("-0.5"), Decimal("100.5")):
        with pytest.raises(EventError) as caught:
            FindingEvent(at=at, item="4c", points=points)
        assert caught.value.field == "points"


# ---------------------------------------------------------------------------------------- times
@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00",  # east of UTC (the contract zone): before year 1 in UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
        "9999-12-31T23:59:59",
        "1999-12-31T23:59:59Z",
        "2000-01-01T07:59:59+08:00",
        "2100-01-01T00:00:00Z",
        "2100-01-01T08:00:00+08:00",
        "２０２６-10-03T00:00:00Z",
        "2026-10-03T00:00:00.000000000000000000000000000000000000000000000000000000000000Z",
        "x" * 10_000,
        12345,
        None,
    ],
)
def test_times_outside_2000_to_2100_are_refused_with_the_field(value: object) -> None:
    if value is None:  # 'at' is required: missing
        refused({**FINDING, "at": value}, "at")
        return
    refused({**FINDING, "at": value}, "at")
    refused({"type": "state", "at": AT, "known_at": value, "node": "CPE-1", "state": "down"}, "known_at")
    window = {"type": "maintenance", "from": "2026-10-10T01:00:00+08:00", "to": value, "scope": "T03"}
    refused(window, "to")
    with pytest.raises(EventError) as caught:
        parse_time(value, CST, "as_of")
    assert caught.value.field == "as_of"


def test_the_bounds_themselves() -> None:
    assert parse_time("2000-01-01T00:00:00Z", None, "at") == EARLIEST
    assert parse_time("2000-01-01T08:00:00+08:00", None, "at") == EARLIEST
    last = parse_time("2099-12-31T23:59:59.999999Z", None, "at")
    assert last == LATEST - timedelta(microseconds=1)
    with pytest.raises(EventError):
        parse_time("2099-12-31T23:59:59.999999-00:01", None, "at")


def test_an_event_built_in_code_is_bounded_too() -> None:
    with pytest.raises(EventError) as caught:
        StateEvent(at=datetime(1970, 1, 1, tzinfo=UTC), node="CPE-1", state="down")  # type: ignore[arg-type]
    assert caught.value.field == "at"
    start = datetime(2026, 10, 10, tzinfo=UTC)
    with pytest.raises(EventError) as caught:
        MaintenanceEvent(at=start, start=start, end=datetime(2100, 1, 2, tzinfo=UTC), scope="T03")
    assert caught.value.field == "to"


# ---------------------------------------------------------------------------------------- free text
def _ack(**extra: object) -> dict[str, Any]:
    return {"type": "ack", "at": AT, "node": "CPE-1", **extra}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({**FINDING, "note": "x" * (MAX_TEXT_BYTES + 1)}, "note"),
        ({**FINDING, "by": "x" * (MAX_TEXT_BYTES + 1)}, "by"),
        ({**FINDING, "evidence": "x" * (MAX_TEXT_BYTES + 1)}, "evidence"),
        ({"type": "explanation", "at": AT, "node": "CPE-1", "text": "说" * (MAX_TEXT_BYTES // 3 + 1)}, "text"),
        ({"type": "exclusion", "at": AT, "node": "CPE-1", "status": "requested", "cause": "c" * 10**6}, "cause"),
        (
            {"type": "maintenance", "from": AT, "to": "2026-10-21T00:00:00Z", "scope": "T03", "reason": "r" * 5000},
            "reason",
        ),
        (_ack(node=None, incident="I" * (MAX_TEXT_BYTES + 1)), "incident"),
        (_ack(by="b" * (MAX_TEXT_BYTES + 1)), "by"),
        ({"type": "onsite", "at": AT, "node": "CPE-1", "by": "b" * (MAX_TEXT_BYTES + 1)}, "by"),
        ({"type": "explanation", "at": AT, "node": "CPE-1", "text": "a\x00b"}, "text"),  # PostgreSQL stores no NUL
        ({"type": "explanation", "at": AT, "node": "CPE-1", "text": "lone \ud800"}, "text"),  # not encodable
        ({**FINDING, "note": "\udfff"}, "note"),
    ],
)
def test_free_text_over_4_kib_of_utf8_is_refused(obj: dict[str, Any], field: str) -> None:
    refused(obj, field)


def test_free_text_of_exactly_4_kib_is_kept() -> None:
    text = "说" * (MAX_TEXT_BYTES // 3) + "x" * (MAX_TEXT_BYTES % 3)
    assert len(text.encode()) == MAX_TEXT_BYTES
    event = parse_event({"type": "explanation", "at": AT, "node": "CPE-1", "text": text}, CST)
    assert event.to_json()["text"] == text


# ---------------------------------------------------------------------------------------- polls
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"rtt_ms": float("nan")}, "rtt_ms"),
        ({"rtt_ms": float("inf")}, "rtt_ms"),
        ({"rtt_ms": -1}, "rtt_ms"),
        ({"rtt_ms": 10**400}, "rtt_ms"),
        ({"loss": 1.5}, "loss"),
        ({"loss": -0.1}, "loss"),
        ({"loss": float("nan")}, "loss"),
        ({"loss": "0.5"}, "loss"),
    ],
)
def test_poll_measurements_must_be_finite_and_in_range(extra: dict[str, Any], field: str) -> None:
    refused({"type": "poll", "at": AT, "node": "CPE-1", "ok": True, **extra}, field)


def test_poll_measurements_in_range_are_kept() -> None:
    event = parse_event({"type": "poll", "at": AT, "node": "CPE-1", "ok": True, "rtt_ms": 0, "loss": 1}, CST)
    assert isinstance(event, PollEvent) and event.rtt_ms == 0.0 and event.loss == 1.0


# ---------------------------------------------------------------------------------------- hostile shapes
@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"type": ["state"]}, "type"),
        ({"type": {"a": 1}}, "type"),
        ({"type": "x" * 10**6}, "type"),
        ({"type": "state", "at": AT, "node": "CPE-1", "state": ["down"]}, "state"),
        ({"type": "state", "at": AT, "node": "CPE-1", "state": 10**4000}, "state"),
        ({"type": "exclusion", "at": AT, "node": "CPE-1", "status": {"s": 1}}, "status"),
        ({"type": "state", "at": [AT], "node": "CPE-1", "state": "down"}, "at"),
    ],
)
def test_values_of_the_wrong_shape_are_refused_with_a_short_message(obj: dict[str, Any], field: str) -> None:
    error = refused(obj, field)
    assert len(error.message) < 300


def test_deep_nesting_in_a_value_is_refused() -> None:
    deep: object = 1
    for _ in range(500):
        deep = [deep]
    error = refused({**FINDING, "note": deep}, "note")
    assert len(error.message) < 300
    assert json.loads(json.dumps(FINDING))  # the base object itself is fine


# ---------------------------------------------------------------------------------------- months
@pytest.mark.parametrize(
    "text",
    [
        *("２０２６-１０", "2026-１０", "٢٠٢٦-١٠", "2026-10\n", " 2026-10"),
        *("0001-01", "9999-12", "1999-12", "2100-01", "2026-00", "2026-13"),
        *("+2026-10", "2026-1", "2026_10", "20261-0"),
    ],
)
def test_month_keys_are_ascii_yyyy_mm_in_range(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text, DEFAULT_POLICY)


def test_month_bounds_are_accepted() -> None:
    assert Month.parse("2000-01", DEFAULT_POLICY).key == "2000-01"
    assert Month.parse("2099-12", DEFAULT_POLICY).end == datetime(2100, 1, 1, tzinfo=CST)
