"""The monthly report: JSON fields and types (SPEC §6); CSV and HTML forms agree with the JSON exactly."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
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
from monitor.report import (
    BREACH_COLUMNS,
    INCIDENT_COLUMNS,
    TABLES,
    csv_tables,
    html_from_json,
    points_summary,
    render,
    render_file,
    report_csv,
    report_html,
    report_json,
    zip_from_json,
)

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
    # the inventory's names, kept by the assessment: every report built anywhere shows them
    assert data["areas"] == [{"id": "T01", "online_rate": data["online_rate"], "name": "Chengguan 城关镇"}]
    assert [c["id"] for c in data["circuits"]] == ["CPE-0001", "CPE-0002", "CPE-0003"]
    assert [c["name"] for c in data["circuits"]] == ["Dongjia Cun 8M", "Xiwan Cun 20M", "Nanpo Cun 10M"]


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
    data = report_json(assessment, version=1, generated_at=GENERATED, names={"T01": "Town 1 一镇"})
    assert data["areas"][0]["name"] == "Town 1 一镇"  # names= overrides the inventory's
    assert data["circuits"][0]["name"] == "Dongjia Cun 8M"
    assert "Town 1 一镇" in report_html(assessment, version=1, generated_at=GENERATED, names={"T01": "Town 1 一镇"})
    page = report_html(assessment, version=1, generated_at=GENERATED)
    assert "<td>T01 Chengguan 城关镇</td>" in page


def test_naive_generated_at_is_refused(assessment: Assessment) -> None:
    with pytest.raises(ValueError, match="offset"):
        report_json(assessment, version=1, generated_at=datetime(2026, 11, 2))


# ---------------------------------------------------------------------- CSV
def test_csv_sections_parse_back_and_agree(assessment: Assessment, data: dict[str, Any]) -> None:
    text = report_csv(assessment, version=3, generated_at=GENERATED)
    assert render(assessment, "csv", version=3, generated_at=GENERATED) == text
    incidents, items, summary, areas, circuits, findings, breaches = csv_sections(text)
    assert breaches == [list(BREACH_COLUMNS)]  # no breach in this month

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

    assert areas == [["area", "name", "online_rate"], ["T01", "Chengguan 城关镇", json.dumps(data["online_rate"])]]
    assert circuits[0] == ["circuit", "name", "online_rate"]
    assert [r[:2] for r in circuits[1:]] == [
        ["CPE-0001", "Dongjia Cun 8M"],
        ["CPE-0002", "Xiwan Cun 20M"],
        ["CPE-0003", "Nanpo Cun 10M"],
    ]
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
    findings = csv_sections(text)[5]
    assert findings[0][0] == "at"
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
    assert '<data value="43200">12:00:00</data>' in page  # recovery as h:mm:ss
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


# ---------------------------------------------------------------------- what the assessor found
#: 3 channels behind CPE-0002 offline over the 10th's and the 11th's 11:00 (6 breaches), CAM-0003-1 offline from
#: 10:30 on the 20th (inside the grace at 11:00) over the 21st's 11:00 (1 breach); nothing observed before the
#: 10th, 09:00:00.5 (a fractional second: channel-seconds are not whole).
BREACH_EVENTS: list[dict[str, Any]] = [
    {"type": "state", "at": "2026-10-10T09:00:00.5+08:00", "node": "CPE-0002", "state": "down"},
    {"type": "state", "at": "2026-10-12T10:00:00+08:00", "node": "CPE-0002", "state": "up"},
    {"type": "state", "at": "2026-10-20T10:30:00+08:00", "node": "CAM-0003-1", "state": "down"},
    {"type": "state", "at": "2026-10-21T12:00:00+08:00", "node": "CAM-0003-1", "state": "up"},
]
DAY = 86400


@pytest.fixture(scope="module")
def breached() -> dict[str, Any]:
    return report_json(build(events=BREACH_EVENTS), version=4, generated_at=GENERATED)


class _Tables(HTMLParser):
    """The rows of every ``<table class=...>`` of a page: per cell its text, and the ``datetime`` of its first
    ``<time>`` (or the ``value`` of its first ``<data>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._attr: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell, self._attr = [], None
        elif tag in ("time", "data") and self._cell is not None and self._attr is None:
            self._attr = a.get("datetime") if tag == "time" else a.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(("".join(self._cell), self._attr))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(page: str) -> dict[str, list[list[tuple[str, str | None]]]]:
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return {k: [r for r in rows if r] for k, rows in parser.tables.items()}


def test_claim_breaches_are_itemised_in_json_csv_and_html(breached: dict[str, Any]) -> None:
    listed = breached["claim_breach_list"]
    assert breached["claim_breaches"] == len(listed) == 7
    assert listed[0] == {
        "at": "2026-10-10T11:00:00+08:00",
        "channel": "CAM-0002-1",
        "stretch_start": "2026-10-10T09:00:00.500000+08:00",
        "incident": "CPE-0002@2026-10-10T01:00:00Z",
    }
    assert [b["at"][:10] for b in listed] == ["2026-10-10"] * 3 + ["2026-10-11"] * 3 + ["2026-10-21"]
    assert listed[-1]["channel"] == "CAM-0003-1" and listed[-1]["stretch_start"] == "2026-10-20T10:30:00+08:00"
    items = {i["key"]: i for i in breached["items"]}
    assert items["4e"]["lost"] == 14

    # CSV: its own section (the last), row for row the JSON's list
    section = csv_sections(csv_tables(breached)["claim_breaches"])[0]
    assert section[0] == list(BREACH_COLUMNS)
    assert [dict(zip(BREACH_COLUMNS, r, strict=True)) for r in section[1:]] == [
        {"date": b["at"][:10], **b} for b in listed
    ]
    assert csv_sections(report_csv(build(events=BREACH_EVENTS), version=4, generated_at=GENERATED))[6] == section

    # HTML: a table of them, row for row the JSON's list (times as <time datetime>, shown local)
    page = html_from_json(breached)
    rows = html_tables(page)["breaches"]
    assert [(r[1][1], r[2][0], r[3][1], r[4][0]) for r in rows] == [
        (b["at"], b["channel"], b["stretch_start"], b["incident"]) for b in listed
    ]
    assert [r[0][0] for r in rows] == [str(n) for n in range(1, 8)]
    assert rows[0][1][0] == "2026-10-10" and rows[0][3][0] == "2026-10-10 09:00:00"


def test_observed_share_and_first_observation(breached: dict[str, Any]) -> None:
    active = 14 * 31 * DAY
    before = 14 * (9 * DAY + 9 * 3600 + 0.5)  # nothing observed before the 10th, 09:00:00.5
    assert breached["first_observation"] == "2026-10-10T09:00:00.500000+08:00"
    assert breached["active_channel_seconds"] == active
    assert breached["blind_channel_seconds"] == 0
    assert breached["observed_channel_seconds"] == active - before
    assert breached["observed_share"] == pytest.approx((active - before) / active, abs=1e-15)
    page = html_from_json(breached)
    share = breached["observed_share"]
    assert f'<data value="{share!r}">{share * 100:.2f}%</data>' in page
    assert 'first observation</span>' not in page or "首次监测" in page
    assert '<time datetime="2026-10-10T09:00:00.500000+08:00">2026-10-10 09:00:00</time>' in page
    fields = dict(csv_sections(csv_tables(breached)["summary"])[0][1:])
    assert fields["first_observation"] == breached["first_observation"]
    assert json.loads(fields["observed_share"]) == share
    # nothing observed at all: no first observation, no observed time
    quiet = report_json(build(events=[]), version=1, generated_at=GENERATED)
    assert quiet["first_observation"] is None and quiet["observed_channel_seconds"] == 0
    assert quiet["observed_share"] == 0.0
    # a body issued before these fields existed still renders
    old = {k: v for k, v in breached.items() if k not in ("first_observation", "observed_share")}
    assert "<!DOCTYPE html>" in html_from_json(old)


def test_human_formats_one_per_column(breached: dict[str, Any]) -> None:
    page = html_from_json(breached)
    # channel-seconds are not whole here; people see whole numbers, the JSON literal stays exact
    assert breached["offline_channel_seconds"] == 3 * (49 * 3600 - 0.5) + 25.5 * 3600
    assert '<data value="620998.5">620,999</data>' in page
    assert f'<data value="{breached["online_channel_seconds"]!r}">36,876,602</data>' in page
    # durations: h:mm:ss always; times: YYYY-MM-DD hh:mm:ss always
    shown = re.findall(r'<data value="[^"]*">(\d+:\d\d[^<]*)</data>', page)
    assert shown and all(re.fullmatch(r"\d+:\d\d:\d\d", d) for d in shown), shown
    times = re.findall(r"<time datetime=\"[^\"]*\">([^<]*)</time>", page)
    dates = [t for t in times if len(t) == 10]
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t) for t in times if t not in dates)
    assert len(dates) == 7  # the breach table's date column


def test_incident_ids_do_not_wrap_and_show_the_local_start(data: dict[str, Any]) -> None:
    page = html_from_json(data)
    css = page[page.index("<style>") : page.index("</style>")]
    assert re.search(r"td\.id[^{]*\{[^}]*white-space: nowrap", css)
    assert "word-break: break-all" not in css.split("td.id")[1].split("}")[0]
    rows = html_tables(page)["incidents"]
    assert len(rows) == len(data["incidents"])
    for row, inc in zip(rows, data["incidents"], strict=True):
        assert row[0][0].startswith(inc["id"])  # the id, then the local start beside it
        assert row[0][1] == inc["start"]
        local = datetime.fromisoformat(inc["start"]).strftime("%Y-%m-%d %H:%M:%S")
        assert row[0][0] == inc["id"] + local
    assert "every time shown is local (Asia/Shanghai)" in page
    assert "section.wide { page: wide; }" in css and "size: A4 landscape" in css


def test_zip_one_csv_per_table_with_bom(breached: dict[str, Any]) -> None:
    blob = zip_from_json(breached)
    assert blob == zip_from_json(breached)  # one body, the same bytes
    assert render_file(breached, "zip") == blob
    tables = csv_tables(breached)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert archive.namelist() == [f"{t}.csv" for t in TABLES]
        for info in archive.infolist():
            assert info.date_time == (2026, 11, 2, 9, 30, 0)  # generated_at, local
            raw = archive.read(info)
            assert raw.startswith(b"\xef\xbb\xbf")
            assert raw.decode("utf-8-sig") == tables[info.filename.removesuffix(".csv")]
        areas = list(csv.reader(io.StringIO(archive.read("areas.csv").decode("utf-8-sig"))))
        assert areas[1][:2] == ["T01", "Chengguan 城关镇"]
        summary = dict(csv.reader(io.StringIO(archive.read("summary.csv").decode("utf-8-sig"))))
        assert json.loads(summary["score"]) == breached["score"]
        assert json.loads(summary["amount"]) == breached["amount"]
        incidents = list(csv.reader(io.StringIO(archive.read("incidents.csv").decode("utf-8-sig"))))
        assert [r[0] for r in incidents[1:]] == [i["id"] for i in breached["incidents"]]
    # the one-text CSV is the same tables, separated by a blank line
    assert report_csv(build(events=BREACH_EVENTS), version=4, generated_at=GENERATED) == "\r\n".join(tables.values())


def test_render_file_formats(breached: dict[str, Any]) -> None:
    assert json.loads(render_file(breached, "json")) == breached
    assert render_file(breached, "csv").decode() == "\r\n".join(csv_tables(breached).values())
    assert render_file(breached, "html").decode() == html_from_json(breached)
    with pytest.raises(ValueError, match="format"):
        render_file(breached, "xlsx")  # type: ignore[arg-type]


def test_points_summary_says_where_the_points_went(breached: dict[str, Any], data: dict[str, Any]) -> None:
    assert points_summary(breached) == [
        "points lost: 14 (score 86)",
        "  4e −14: 7 breaches of the 11:00 rule",
    ]
    lines = points_summary(data)
    assert lines[0] == "points lost: 12 (score 88)"
    assert lines[1:] == [
        "  recovery −1: recovery 1 + unexplained long outage 0 points before cap",
        "  4c −5: 1 finding",
        "  4d −6: 1 finding",
    ]
    capped = json.loads(json.dumps(breached))
    capped["claim_breaches"] = 273
    for item in capped["items"]:
        if item["key"] == "4e":
            item["lost"] = 30
    assert "  4e −30 (all 30): 273 breaches of the 11:00 rule" in points_summary(capped)
