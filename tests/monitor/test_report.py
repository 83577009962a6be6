"""The monthly report: JSON fields and types (SPEC §6); CSV and HTML forms agree with the JSON exactly."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from monitor.assessment import Assessment, Month, assess
from monitor.contracts import Contract, default_contract
from monitor.engine import Engine
from monitor.events import parse_event
from monitor.inventory_io import load_inventory
from monitor.policy import DEFAULT_POLICY, Policy
from monitor.report import INCIDENT_COLUMNS, render, report_csv, report_html, report_json

INVENTORY = Path(__file__).resolve().parents[1] / "data" / "inventory" / "small.csv"
GENERATED = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
MONTH_END = datetime.fromisoformat("2026-11-01T00:00:00+08:00")

EVENTS: list[dict[str, Any]] = [
    # level 3 (9 channels behind CPE-0003), acked after 1 h, back after 12 h: recovery loses 1 point
    {"type": "state", "at": "2026-10-03T08:00:00+08:00", "node": "CPE-0003", "state": "down"},
    {"type": "ack", "at": "2026-10-03T09:00:00+08:00", "node": "CPE-0003", "by": "crew 1"},
    {"type": "state", "at": "2026-10-03T20:00:00+08:00", "node": "CPE-0003", "state": "up"},
    # a fault excluded by an approved third-party exclusion
    {"type": "state", "at": "2026-10-15T09:00:00+08:00", "node": "CPE-0001", "state": "down"},
    {"type": "state", "at": "2026-10-15T10:30:00+08:00", "node": "CPE-0001", "state": "up"},
    {
        "type": "exclusion",
        "at": "2026-10-16T09:00:00+08:00",
        "node": "CPE-0001",
        "status": "approved",
        "cause": "grid power cut",
        "by": "customer",
    },
    # findings: a complaint (5) and staffing (6): score 100 - 1 - 5 - 6 = 88, share 0.9
    {
        "type": "finding",
        "at": "2026-10-05T10:00:00+08:00",
        "item": "4c",
        "points": 5,
        "note": "<script>alert('x')</script> & more",
        "by": "Li <inspector>",
    },
    {"type": "finding", "at": "2026-10-20T10:00:00+08:00", "item": "4d", "points": 6, "note": "2 missing"},
    # still open at the end of the month
    {"type": "state", "at": "2026-10-31T20:00:00+08:00", "node": "CAM-0002-1", "state": "down"},
]

SPEC_FIELDS = {
    "month",
    "policy",
    "version",
    "as_of",
    "generated_at",
    "channels",
    "expected_channel_seconds",
    "online_channel_seconds",
    "excluded_channel_seconds",
    "blind_channel_seconds",
    "online_rate",
    "claim_breaches",
    "incidents",
    "items",
    "areas",
    "score",
    "share_paid",
    "base",
    "amount",
}
INCIDENT_FIELDS = {
    "id",
    "level",
    "scope",
    "start",
    "clock_start",
    "ack",
    "onsite_s",
    "end",
    "open",
    "peak_channels",
    "response_s",
    "recovery_s",
    "restore_limit_s",
    "restore_met",
    "excluded",
    "deductions",
}


def build(
    as_of: datetime = MONTH_END, policy: Policy | None = None, events: list[dict[str, Any]] | None = None
) -> Assessment:
    inventory = load_inventory(INVENTORY)
    contract: Contract = default_contract(policy or replace(DEFAULT_POLICY, base=Decimal("61875")))
    contract = replace(contract, customer="County Public Security Bureau <县公安局>")
    engine = Engine(inventory, contract.policy)
    parsed = sorted((parse_event(e) for e in (EVENTS if events is None else events)), key=lambda e: e.known)
    engine.replay([e for e in parsed if e.known <= as_of])
    history = engine.snapshot(as_of.astimezone(UTC))
    return assess(inventory, contract, history, Month.parse("2026-10", contract.policy))


@pytest.fixture(scope="module")
def assessment() -> Assessment:
    return build()


@pytest.fixture(scope="module")
def data(assessment: Assessment) -> dict[str, Any]:
    return report_json(assessment, version=3, generated_at=GENERATED)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def csv_sections(text: str) -> list[list[list[str]]]:
    sections: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text, newline="")):
        if not row:
            sections.append([])
        else:
            sections[-1].append(row)
    return sections


# ---------------------------------------------------------------------- JSON
def test_json_has_every_spec_field_with_its_type(data: dict[str, Any]) -> None:
    assert set(data) >= SPEC_FIELDS
    assert data["month"] == "2026-10"
    assert data["version"] == 3
    assert data["policy"]["name"] == "contract-default"
    assert len(data["policy"]["hash"]) == 64
    assert data["policy"]["timezone"] == "Asia/Shanghai"
    assert data["as_of"] == "2026-11-01T00:00:00+08:00"
    assert data["generated_at"] == "2026-11-02T09:30:00+08:00"
    assert data["channels"] == 14
    for key in ("expected_channel_seconds", "online_channel_seconds", "excluded_channel_seconds"):
        assert isinstance(data[key], int)
    assert data["blind_channel_seconds"] == 0
    assert (
        data["expected_channel_seconds"] == data["online_channel_seconds"] + data["offline_channel_seconds"]
    )
    # 2 channels x 1.5 h of the excluded fault come off both sides
    assert data["excluded_channel_seconds"] == 2 * 5400
    assert isinstance(data["online_rate"], float)
    assert 0.98 < data["online_rate"] < 1
    assert data["claim_breaches"] == 0
    assert data["score"] == 88
    assert data["share_paid"] == 0.9
    assert data["base"] == 61875.0 and isinstance(data["base"], float)
    assert data["amount"] == 55687.5
    assert data["projection"] is False
    assert data["base_rule"] == "fixed"
    assert data["contract"] == {
        "id": "default",
        "name": "Whole network",
        "customer": "County Public Security Bureau <县公安局>",
    }
    assert data["areas"] == [{"id": "T01", "online_rate": data["online_rate"]}]
    assert [c["id"] for c in data["circuits"]] == ["CPE-0001", "CPE-0002", "CPE-0003"]


def test_json_incidents(data: dict[str, Any]) -> None:
    incidents = {i["scope"]: i for i in data["incidents"]}
    assert set(incidents) == {"CPE-0003", "CPE-0001", "CAM-0002-1"}
    for inc in data["incidents"]:
        assert set(inc) >= INCIDENT_FIELDS
        assert set(inc["deductions"]) == {"response", "recovery", "unexplained"}
        for key in ("start", "clock_start", "ack", "end"):
            assert inc[key] is None or inc[key].endswith("+08:00"), (key, inc[key])
        for key in ("response_s", "recovery_s", "restore_limit_s", "peak_channels", "level"):
            assert is_number(inc[key])
    l3 = incidents["CPE-0003"]
    assert l3["id"] == "CPE-0003@2026-10-03T00:00:00Z"
    assert (l3["level"], l3["peak_channels"]) == (3, 9)
    assert l3["start"] == l3["clock_start"] == "2026-10-03T08:00:00+08:00"
    assert l3["ack"] == "2026-10-03T09:00:00+08:00"
    assert l3["end"] == "2026-10-03T20:00:00+08:00"
    assert (l3["response_s"], l3["recovery_s"]) == (3600, 43200)
    assert l3["restore_limit_s"] == 8 * 3600  # CPE-0003 is outside the county
    assert l3["restore_met"] is False and l3["open"] is False and l3["excluded"] is False
    assert l3["deductions"] == {"response": 0, "recovery": 1, "unexplained": 0}
    assert l3["onsite_s"] is None

    excluded = incidents["CPE-0001"]
    assert excluded["excluded"] is True and excluded["excluded_by"] == "exclusion"
    assert excluded["exclusion_status"] == "approved"
    assert excluded["level"] == 0

    open_ = incidents["CAM-0002-1"]
    assert open_["open"] is True
    assert open_["end"] is None and open_["ack"] is None
    assert open_["recovery_s"] == 4 * 3600  # measured to as_of


def test_json_items_and_findings(data: dict[str, Any]) -> None:
    items = {i["key"]: i for i in data["items"]}
    assert list(items) == ["response", "recovery", "online", "4a", "4b", "4c", "4d", "4e", "5"]
    assert items["4c"]["points"] is None and items["4d"]["points"] is None
    assert items["recovery"]["points"] == 20 and items["recovery"]["lost"] == 1
    assert (items["4c"]["lost"], items["4d"]["lost"]) == (5, 6)
    assert items["recovery"]["title_zh"] == "故障恢复时间"
    assert 100 - sum(i["lost"] for i in data["items"]) == data["score"]
    assert [f["at"] for f in data["findings"]] == ["2026-10-05T10:00:00+08:00", "2026-10-20T10:00:00+08:00"]
    assert data["findings"][0]["note"].startswith("<script>")  # raw in JSON; escaped in HTML


def test_json_render_is_the_dict(assessment: Assessment, data: dict[str, Any]) -> None:
    text = render(assessment, "json", version=3, generated_at=GENERATED)
    assert json.loads(text) == data
    assert "故障恢复时间" in text  # ensure_ascii=False
    with pytest.raises(ValueError, match="format"):
        render(assessment, "pdf", version=3, generated_at=GENERATED)  # type: ignore[arg-type]


def test_amount_and_base_round_half_up_to_the_cent() -> None:
    a = build(policy=replace(DEFAULT_POLICY, base=Decimal("1000.005")))
    data = report_json(a, version=1, generated_at=GENERATED)
    assert data["base"] == 1000.01  # half-up, not half-even
    assert data["share_paid"] == 0.9
    assert data["amount"] == 900.0  # 900.0045
    tariff = report_json(build(policy=DEFAULT_POLICY), version=1, generated_at=GENERATED)
    assert tariff["base_rule"] == "tariff"
    assert tariff["base"] == 305.0  # 113 + 102 + 90
    assert tariff["amount"] == 274.5


def test_areas_take_optional_names(assessment: Assessment) -> None:
    data = report_json(assessment, version=1, generated_at=GENERATED, names={"T01": "Chengguan 城关镇"})
    assert data["areas"][0]["name"] == "Chengguan 城关镇"
    assert "Chengguan 城关镇" in report_html(
        assessment, version=1, generated_at=GENERATED, names={"T01": "Chengguan 城关镇"}
    )


def test_naive_generated_at_is_refused(assessment: Assessment) -> None:
    with pytest.raises(ValueError, match="offset"):
        report_json(assessment, version=1, generated_at=datetime(2026, 11, 2))


# ---------------------------------------------------------------------- CSV
def test_csv_sections_parse_back_and_agree(assessment: Assessment, data: dict[str, Any]) -> None:
    text = report_csv(assessment, version=3, generated_at=GENERATED)
    assert render(assessment, "csv", version=3, generated_at=GENERATED) == text
    incidents, items, summary, areas, circuits, findings = csv_sections(text)

    assert tuple(incidents[0]) == INCIDENT_COLUMNS
    rows = [dict(zip(incidents[0], r, strict=True)) for r in incidents[1:]]
    assert len(rows) == len(data["incidents"]) == 3
    for row, inc in zip(rows, data["incidents"], strict=True):
        assert row["id"] == inc["id"]
        assert row["level"] == json.dumps(inc["level"])
        assert row["start"] == inc["start"]
        assert row["end"] == (inc["end"] or "")
        assert row["open"] == json.dumps(inc["open"])
        assert row["recovery_s"] == json.dumps(inc["recovery_s"])
        for k, v in inc["deductions"].items():
            assert row[f"deduction_{k}"] == json.dumps(v)

    assert items[0] == ["key", "title_en", "title_zh", "points", "lost", "details"]
    assert len(items) - 1 == len(data["items"])
    for cells, item in zip(items[1:], data["items"], strict=True):
        assert cells[0] == item["key"]
        assert cells[2] == item["title_zh"]
        assert cells[3] == ("" if item["points"] is None else json.dumps(item["points"]))
        assert cells[4] == json.dumps(item["lost"])

    assert summary[0] == ["field", "value"]
    fields = dict(summary[1:])
    for key in ("score", "amount", "online_rate", "share_paid", "base", "claim_breaches", "version"):
        assert fields[key] == json.dumps(data[key]), key
        assert json.loads(fields[key]) == data[key]
    assert fields["amount"] == "55687.5"
    assert fields["month"] == "2026-10"
    assert fields["policy_hash"] == data["policy"]["hash"]
    assert fields["as_of"] == data["as_of"]
    assert fields["projection"] == "false"

    assert areas == [["area", "name", "online_rate"], ["T01", "", json.dumps(data["online_rate"])]]
    assert [r[0] for r in circuits[1:]] == ["CPE-0001", "CPE-0002", "CPE-0003"]
    assert findings[0] == ["at", "item", "points", "note", "by", "evidence"]
    assert findings[1][3] == data["findings"][0]["note"]


def test_csv_defuses_formulas_in_free_text() -> None:
    events = [
        {
            "type": "finding",
            "at": "2026-10-05T10:00:00+08:00",
            "item": "5",
            "points": 1,
            "note": "=HYPERLINK(1)",
        }
    ]
    text = report_csv(build(events=events), version=1, generated_at=GENERATED)
    findings = csv_sections(text)[-1]
    assert findings[1][3] == "'=HYPERLINK(1)"


# ---------------------------------------------------------------------- HTML
class _TagChecker(HTMLParser):
    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def test_html_agrees_is_bilingual_and_printable(assessment: Assessment, data: dict[str, Any]) -> None:
    page = report_html(assessment, version=3, generated_at=GENERATED)
    assert render(assessment, "html", version=3, generated_at=GENERATED) == page
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in page and 'lang="zh-CN"' in page
    assert '<meta charset="utf-8">' in page
    assert "@media print" in page and "size: A4" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    # both languages
    for text in (
        "Monthly O&amp;M assessment",
        "月度运维考核",
        "支付比例",
        "金额",
        "扣分",
        "甲方",
        "乙方",
        "盖章",
        "三级",
        "故障",
    ):
        assert text in page, text
    # the same numbers as the JSON, shown for people and as the JSON literal
    assert '<data value="55687.5">55,687.50</data>' in page
    assert '<data value="61875.0">61,875.00</data>' in page
    assert f'<data value="{data["score"]}">88</data>' in page
    assert f'<data value="{data["online_rate"]!r}">' in page
    assert '<data value="0.9">90%</data>' in page
    assert data["policy"]["hash"] in page
    assert 'datetime="2026-10-03T08:00:00+08:00"' in page
    assert '<data value="43200">12:00</data>' in page  # recovery as h:mm
    assert "未恢复" in page  # the open incident
    assert "Projection" not in page
    # every interpolated value escaped
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "Li &lt;inspector&gt;" in page
    assert "County Public Security Bureau &lt;县公安局&gt;" in page
    values = [attrs["value"] for tag, attrs in checker.tags if tag == "data"]
    assert json.dumps(data["amount"]) in values and json.dumps(data["score"]) in values


def test_current_month_is_a_projection() -> None:
    as_of = datetime.fromisoformat("2026-10-18T12:00:00+08:00")
    a = build(as_of=as_of)
    data = report_json(a, version=1, generated_at=GENERATED)
    assert data["projection"] is True
    assert data["as_of"] == "2026-10-18T12:00:00+08:00"
    assert [i["scope"] for i in data["incidents"]] == ["CPE-0003", "CPE-0001"]
    assert data["score"] == 88 + 6  # the staffing finding is dated after as_of
    page = report_html(a, version=1, generated_at=GENERATED)
    assert 'class="projection"' in page and "Projection" in page and "预估" in page
    fields = dict(csv_sections(report_csv(a, version=1, generated_at=GENERATED))[2][1:])
    assert fields["projection"] == "true"
