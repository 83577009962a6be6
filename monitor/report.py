"""The monthly report (SPEC §6) in three forms that agree to the cent: JSON, CSV and printable bilingual HTML.

:func:`report_json` turns an :class:`~monitor.assessment.Assessment` into plain JSON values; the CSV and HTML
forms are rendered *from that dict*, so every number they show is the JSON number (the CSV writes it exactly
as JSON does; the HTML shows it formatted for people and carries the JSON literal in ``<data value=...>``).

Conventions (SPEC §6): times are RFC 3339 strings with the contract's offset (``2026-10-03T08:00:00+08:00``);
durations and channel-seconds are numbers of seconds (int when whole); ``online_rate`` and ``share_paid`` are
fractions (0.9, not 90); ``base`` and ``amount`` are rounded half-up to the cent; points are numbers (``null``
for an item without a cap of its own); ``ack``, ``end`` and ``onsite_s`` are ``null`` when there is none.
``version`` is ``null`` for a computation (which stores nothing) and the version's number once issued (SPEC R9);
an issued version's stored body renders again as CSV or HTML with :func:`render_body`.

Display names: the areas and circuits carry the inventory's ``name`` (from the assessment; ``names=`` adds or
overrides). Observation: ``first_observation`` (the earliest dated channel transition, not a commissioning
boundary: before it a replay takes every node up without having seen anything), ``active_channel_seconds``,
``observed_channel_seconds`` (active, not blind, not before the first observation) and ``observed_share``
(observed / active; ``null`` when nothing was active). ``claim_breach_list`` itemises the 11:00 breaches:
``at`` (the claim instant), ``channel``, ``stretch_start`` (when its offline stretch began), ``incident``.

CSV (``format=csv``): one text, sections separated by one blank line, each starting with its own header row:

1. incidents: :data:`INCIDENT_COLUMNS`, one row per incident that started in the month (faults included);
2. items: ``key,title_en,title_zh,points,lost,details``;
3. summary: ``field,value`` rows (:data:`SUMMARY_FIELDS`);
4. areas: ``area,name,online_rate``; 5. circuits: ``circuit,name,online_rate``;
6. findings: ``at,item,points,note,by,evidence``;
7. claim breaches: :data:`BREACH_COLUMNS` (``date`` is the claim instant's local date).

Numbers are written exactly as the JSON writes them (a machine form that agrees to the last digit). Empty cells
are JSON ``null``; booleans are ``true``/``false``. Free-text cells that a spreadsheet would read as a formula
(starting with ``= + - @``) get a leading apostrophe.

ZIP (``format=zip``, :func:`zip_from_json`): the same seven tables, one CSV file each (:data:`TABLES`:
``incidents.csv``, ``items.csv``, ``summary.csv``, ``areas.csv``, ``circuits.csv``, ``findings.csv``,
``claim_breaches.csv``), UTF-8 with a byte-order mark so that spreadsheet programs read the Chinese; the
archive's file times are the report's ``generated_at``, so one body always gives the same bytes.

HTML: one format per column for people (times ``YYYY-MM-DD hh:mm:ss`` local, durations ``h:mm:ss``,
channel-seconds whole with thousands separators); every number keeps its JSON literal in ``<data value>``
and every time its RFC 3339 form in ``<time datetime>``. The PDF (:mod:`monitor.report_pdf`) prints this page.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Literal

from monitor.assessment import US, Assessment, IncidentScore, Seconds, as_jsonable

CENT = Decimal("0.01")

#: Columns of the CSV incidents section (the JSON incident fields, deductions flattened).
INCIDENT_COLUMNS: tuple[str, ...] = (
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
    "excluded_by",
    "exclusion_status",
    "explained",
    "circuits",
    "deduction_response",
    "deduction_recovery",
    "deduction_unexplained",
)

ITEM_COLUMNS: tuple[str, ...] = ("key", "title_en", "title_zh", "points", "lost", "details")

#: Columns of the CSV claim-breach table (one row per entry of the JSON's ``claim_breach_list``).
BREACH_COLUMNS: tuple[str, ...] = ("date", "at", "channel", "stretch_start", "incident")

#: The tables of the CSV forms, in order (file names in the zip: ``{name}.csv``).
TABLES: tuple[str, ...] = ("incidents", "items", "summary", "areas", "circuits", "findings", "claim_breaches")

#: Rows of the CSV summary section: (field, path in the JSON report).
SUMMARY_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contract_id", ("contract", "id")),
    ("contract_name", ("contract", "name")),
    ("customer", ("contract", "customer")),
    ("month", ("month",)),
    ("policy_name", ("policy", "name")),
    ("policy_hash", ("policy", "hash")),
    ("timezone", ("policy", "timezone")),
    ("base_rule", ("base_rule",)),
    ("version", ("version",)),
    ("as_of", ("as_of",)),
    ("generated_at", ("generated_at",)),
    ("projection", ("projection",)),
    ("channels", ("channels",)),
    ("expected_channel_seconds", ("expected_channel_seconds",)),
    ("online_channel_seconds", ("online_channel_seconds",)),
    ("offline_channel_seconds", ("offline_channel_seconds",)),
    ("excluded_channel_seconds", ("excluded_channel_seconds",)),
    ("blind_channel_seconds", ("blind_channel_seconds",)),
    ("online_rate", ("online_rate",)),
    ("claim_breaches", ("claim_breaches",)),
    ("score", ("score",)),
    ("share_paid", ("share_paid",)),
    ("base", ("base",)),
    ("amount", ("amount",)),
    ("first_observation", ("first_observation",)),
    ("active_channel_seconds", ("active_channel_seconds",)),
    ("observed_channel_seconds", ("observed_channel_seconds",)),
    ("observed_share", ("observed_share",)),
)

#: The text formats (:func:`render`, :func:`render_body`).
Format = Literal["json", "csv", "html"]
#: Every format a report is served in: the text ones, ``zip`` (one CSV per table) and ``pdf``.
FileFormat = Literal["json", "csv", "html", "zip", "pdf"]
FORMATS: tuple[str, ...] = ("json", "csv", "html", "zip", "pdf")


# ---------------------------------------------------------------------- values
def _time(t: datetime | None, zone: tzinfo) -> str | None:
    """RFC 3339 with the contract's offset; to the microsecond only when needed."""
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {t!r} has no offset")
    return t.astimezone(zone).isoformat()


def _cents(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _num(value: Decimal | Fraction | int) -> int | float:
    out: int | float = as_jsonable(value)
    return out


def _channel_seconds(us: int) -> int | float:
    return _num(Fraction(us, US))


def _rate(seconds: Seconds) -> float:
    return float(seconds.rate)


def _incident(s: IncidentScore, a: Assessment) -> dict[str, Any]:
    zone = a.policy.zone
    inc = s.incident
    status = inc.exclusion_status()
    return {
        "id": inc.id,
        "level": inc.level,
        "scope": inc.scope,
        "start": _time(inc.start, zone),
        "clock_start": _time(s.clock_start, zone),
        "ack": _time(inc.ack, zone),
        "onsite_s": None if s.onsite_s is None else _num(s.onsite_s),
        "end": _time(inc.end, zone),
        "open": inc.open,
        "peak_channels": inc.peak,
        "response_s": _num(s.response_s),
        "recovery_s": _num(s.recovery_s),
        "restore_limit_s": s.restore_limit_s,
        "restore_met": s.restore_met,
        "excluded": s.excluded,
        "deductions": {
            "response": s.response_lost,
            "recovery": s.recovery_lost,
            "unexplained": s.unexplained_lost,
        },
        "excluded_by": s.excluded_by,
        "exclusion_status": None if status is None else status.value,
        "explained": inc.explained_by(a.as_of),
        "circuits": list(inc.circuits),
    }


def report_json(
    a: Assessment, *, version: int | None, generated_at: datetime, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The report as JSON values: SPEC §6's fields first, then a few extras (see the module docstring).

    Areas and circuits carry the inventory's names the assessment kept; ``names`` (id -> display name) adds
    or overrides some.
    """
    zone = a.policy.zone
    sec = a.seconds
    known = dict(a.names)
    if names is not None:
        known.update(names)

    def named(node_id: str, secs: Seconds) -> dict[str, Any]:
        out: dict[str, Any] = {"id": node_id, "online_rate": _rate(secs)}
        if known.get(node_id):
            out["name"] = known[node_id]
        return out

    active = sec.active
    return {
        "month": a.month.key,
        "policy": {"name": a.policy.name, "hash": a.policy.hash, "timezone": a.policy.timezone},
        "version": version,
        "as_of": _time(a.as_of, zone),
        "generated_at": _time(generated_at, zone),
        "channels": a.channels,
        "expected_channel_seconds": _channel_seconds(sec.expected),
        "online_channel_seconds": _channel_seconds(sec.online),
        "excluded_channel_seconds": _channel_seconds(sec.excluded),
        "blind_channel_seconds": _channel_seconds(sec.blind),
        "online_rate": _rate(sec),
        "claim_breaches": len(a.claim_breaches),
        "incidents": [_incident(s, a) for s in a.incidents],
        "items": [
            {
                "key": i.key,
                "title_en": i.title_en,
                "title_zh": i.title_zh,
                "points": None if i.points is None else _num(i.points),
                "lost": _num(i.lost),
                "details": i.details,
            }
            for i in a.items
        ],
        "areas": [named(area_id, secs) for area_id, secs in a.areas],
        "score": _num(a.score),
        "share_paid": float(a.share_paid),
        "base": _cents(a.base),
        "amount": _cents(a.amount),
        # extras
        "contract": {"id": a.contract.id, "name": a.contract.name, "customer": a.contract.customer},
        "projection": a.projection,
        "base_rule": "tariff" if isinstance(a.policy.base, str) else "fixed",
        "offline_channel_seconds": _channel_seconds(sec.offline),
        "circuits": [named(cid, secs) for cid, secs in a.circuits],
        "claim_breach_list": [
            {
                "at": _time(b.at, zone),
                "channel": b.channel,
                "stretch_start": _time(b.stretch_start, zone),
                "incident": b.incident,
            }
            for b in a.claim_breaches
        ],
        "first_observation": _time(a.first_observation, zone),
        "active_channel_seconds": _channel_seconds(active),
        "observed_channel_seconds": _channel_seconds(a.observed),
        "observed_share": float(Fraction(a.observed, active)) if active else None,
        "findings": [
            {
                "at": _time(f.at, zone),
                "item": f.item,
                "points": _num(f.points),
                "note": f.note,
                "by": f.by,
                "evidence": f.evidence,
            }
            for f in a.findings
        ],
    }


# ---------------------------------------------------------------------- CSV
def _cell(value: Any) -> str:
    """A JSON value as a CSV cell: numbers exactly as ``json.dumps`` writes them, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    return str(value)


def _text_cell(value: Any) -> str:
    """A free-text cell, defused against spreadsheet formula injection."""
    out = _cell(value)
    return "'" + out if out[:1] in ("=", "+", "-", "@", "\t", "\r") else out


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = data
    for key in path:
        value = value[key]
    return value


def _rows(data: Mapping[str, Any], table: str) -> list[list[str]]:
    """One table of the CSV forms: its header row, then its rows (cells as :func:`_cell` writes them)."""
    if table == "incidents":
        out = [list(INCIDENT_COLUMNS)]
        for inc in data["incidents"]:
            row = {k: v for k, v in inc.items() if k != "deductions"}
            for k, v in inc["deductions"].items():
                row[f"deduction_{k}"] = v
            out.append([_cell(row.get(col)) for col in INCIDENT_COLUMNS])
        return out
    if table == "items":
        return [list(ITEM_COLUMNS)] + [
            [_text_cell(item[c]) if c == "details" else _cell(item[c]) for c in ITEM_COLUMNS] for item in data["items"]
        ]
    if table == "summary":
        free_text = {"contract_name", "customer", "policy_name"}
        out = [["field", "value"]]
        for name, path in SUMMARY_FIELDS:
            value = _dig(data, path) if path[0] in data else None
            out.append([name, _text_cell(value) if name in free_text else _cell(value)])
        return out
    if table == "areas":
        return [["area", "name", "online_rate"]] + [
            [a["id"], _text_cell(a.get("name")), _cell(a["online_rate"])] for a in data["areas"]
        ]
    if table == "circuits":
        return [["circuit", "name", "online_rate"]] + [
            [c["id"], _text_cell(c.get("name")), _cell(c["online_rate"])] for c in data["circuits"]
        ]
    if table == "findings":
        return [["at", "item", "points", "note", "by", "evidence"]] + [
            [
                f["at"],
                f["item"],
                _cell(f["points"]),
                _text_cell(f["note"]),
                _text_cell(f["by"]),
                _text_cell(f["evidence"]),
            ]
            for f in data["findings"]
        ]
    if table == "claim_breaches":
        return [list(BREACH_COLUMNS)] + [
            [b["at"][:10], b["at"], b["channel"], _cell(b.get("stretch_start")), b["incident"]]
            for b in data.get("claim_breach_list", [])
        ]
    raise ValueError(f"unknown report table {table!r}")


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def csv_tables(data: Mapping[str, Any]) -> dict[str, str]:
    """Each table of a :func:`report_json` dict as its own CSV text (:data:`TABLES` order)."""
    return {table: _csv_text(_rows(data, table)) for table in TABLES}


def csv_from_json(data: Mapping[str, Any]) -> str:
    """The CSV form of a :func:`report_json` dict: every table in one text (layout in the module docstring)."""
    return "\r\n".join(csv_tables(data).values())


def zip_from_json(data: Mapping[str, Any]) -> bytes:
    """One CSV per table (UTF-8 with BOM) in a zip; the same body always gives the same bytes."""
    stamp = datetime.fromisoformat(data["generated_at"]).timetuple()[:6]
    when = (max(1980, stamp[0]), *stamp[1:])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table, text in csv_tables(data).items():
            info = zipfile.ZipInfo(f"{table}.csv", date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8-sig"))
    return buf.getvalue()


def report_csv(
    a: Assessment, *, version: int | None, generated_at: datetime, names: Mapping[str, str] | None = None
) -> str:
    """The report as one CSV text: incidents, items, summary, areas, circuits, findings (see module doc)."""
    return csv_from_json(report_json(a, version=version, generated_at=generated_at, names=names))


# ---------------------------------------------------------------------- text
def _points(value: int | float) -> str:
    return _json_literal(value).removesuffix(".0")


def points_summary(data: Mapping[str, Any], *, claim_hour: int = 11) -> list[str]:
    """Where the points went, one line per item that lost any, for a terminal (the demo's summary)::

        points lost: 32.5 (score 67.5)
          4e −30 (all 30): 273 breaches of the 11:00 rule; 1 finding (0.5)
    """
    lost = sum(i["lost"] for i in data["items"])
    lines = [f"points lost: {_points(lost)} (score {_points(data['score'])})"]
    for item in data["items"]:
        if not item["lost"]:
            continue
        why = re.sub(r"\b1 findings\b", "1 finding", str(item["details"]))
        if item["key"] == "4e":
            findings = [f for f in data.get("findings", []) if f["item"] == "4e"]
            parts = []
            if data["claim_breaches"]:
                parts.append(f"{data['claim_breaches']} breaches of the {claim_hour}:00 rule")
            if findings:
                found = _points(sum(f["points"] for f in findings))
                parts.append(f"{len(findings)} finding{'' if len(findings) == 1 else 's'} ({found})")
            why = "; ".join(parts) or why
        capped = item["points"] is not None and item["lost"] >= item["points"]
        cap = f" (all {_points(item['points'])})" if capped else ""
        lines.append(f"  {item['key']} −{_points(item['lost'])}{cap}: {why}")
    return lines


# ---------------------------------------------------------------------- HTML
LEVEL_NAMES: dict[int, tuple[str, str]] = {
    1: ("Level 1", "一级"),
    2: ("Level 2", "二级"),
    3: ("Level 3", "三级"),
    0: ("Fault", "故障"),
}

#: The contract's numbering of the assessment items (CONTRACT.md §4).
ITEM_NUMBERS: dict[str, str] = {"response": "1", "recovery": "2", "online": "3"}

_CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "SimSun",
       "Helvetica Neue", Arial, sans-serif; font-size: 10pt; color: #000; margin: 0 auto; max-width: 190mm;
       line-height: 1.35; }
h1 { font-size: 16pt; margin: 0 0 2mm 0; }
h2 { font-size: 12pt; margin: 6mm 0 2mm 0; border-bottom: 1px solid #000; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #666; padding: 1mm 1.5mm; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: 600; }
td.n, th.n { text-align: right; }
td.n { white-space: nowrap; }
table.meta th { width: 32%; }
table.incidents, table.breaches { font-size: 7pt; }
td.id, span.id { white-space: nowrap; overflow-wrap: normal; }
td.id .local { display: block; color: #333; }
table.breaches td, table.breaches th { padding: 0.4mm 1.5mm; }
td.t { white-space: nowrap; }
.zh { color: #333; }
.hash { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 8pt; word-break: break-all; }
.projection { border: 2px solid #b00; padding: 2mm 3mm; margin: 3mm 0; font-weight: 600; }
.summary { display: flex; flex-wrap: wrap; border: 2px solid #000; margin: 3mm 0; }
.summary > div { flex: 1 1 0; padding: 2mm 3mm; border-right: 1px solid #999; }
.summary > div:last-child { border-right: none; }
.summary .label { font-size: 8pt; }
.summary .value { font-size: 13pt; font-weight: 700; white-space: nowrap; }
.signatures { display: flex; gap: 8mm; margin-top: 8mm; page-break-inside: avoid; break-inside: avoid; }
.party { flex: 1; border: 1px solid #000; padding: 3mm; }
.party p { margin: 0 0 5mm 0; }
.line { display: inline-block; min-width: 45mm; border-bottom: 1px solid #000; }
.stamp { height: 30mm; border: 1px dashed #999; margin-bottom: 4mm; }
.muted { color: #555; font-size: 8pt; }
@page wide { size: A4 landscape; margin: 12mm 12mm 14mm 12mm; }
body { page: main; }
section.wide { page: wide; }
@media print {
  body { max-width: none; }
  thead { display: table-header-group; }
  tr { page-break-inside: avoid; break-inside: avoid; }
  h2 { page-break-after: avoid; break-after: avoid; }
  .summary, .projection { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _bi(en: str, zh: str, sep: str = " ") -> str:
    """English then Chinese, each escaped, the Chinese marked with its language."""
    return f'{_e(en)}{sep}<span lang="zh-CN" class="zh">{_e(zh)}</span>'


def _json_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _data(value: int | float, shown: str) -> str:
    """A number shown for people, with the JSON literal it stands for in ``value``."""
    return f'<data value="{_e(_json_literal(value))}">{_e(shown)}</data>'


def _show_number(value: int | float) -> str:
    return _json_literal(value)


def _show_count(value: int | float) -> str:
    """Channel-seconds for people: whole, thousands separated (the exact value stays in ``<data value>``)."""
    return f"{math.floor(value + 0.5):,}"


def _show_money(value: float) -> str:
    return f"{Decimal(repr(value)).quantize(CENT):,.2f}"


def _show_percent(value: float, places: int = 4) -> str:
    return f"{value * 100:.{places}f}%"


def _show_share(value: float) -> str:
    pct = (Decimal(repr(value)) * 100).normalize()
    return f"{pct:f}%"


def _show_time(text: str | None) -> str:
    """Local wall-clock time for people; the RFC 3339 form stays in ``<time datetime>``."""
    if text is None:
        return ""
    t = datetime.fromisoformat(text)
    return f'<time datetime="{_e(text)}">{_e(t.strftime("%Y-%m-%d %H:%M:%S"))}</time>'


def _show_date(text: str) -> str:
    """The local date of a time (the RFC 3339 form stays in ``<time datetime>``)."""
    return f'<time datetime="{_e(text)}">{_e(text[:10])}</time>'


def _show_duration(seconds: int | float | None) -> str:
    """``h:mm:ss`` always (one format per column), whole seconds shown; the exact value in ``<data value>``."""
    if seconds is None:
        return ""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f'<data value="{_e(_json_literal(seconds))}">{h}:{m:02d}:{s:02d}</data>'


def _observed(data: Mapping[str, Any]) -> str:
    """The observed share of the active channel-seconds and the first observation (older bodies: ``—``)."""
    share = data.get("observed_share")
    first = data.get("first_observation")
    if share is None and first is None:
        return "—"
    parts = []
    if share is not None:
        parts.append(
            _data(share, _show_percent(share, 2))
            + " "
            + _bi(
                "of the active channel-seconds (not blind, after the first observation)",
                "的在用点位秒(非未监测,首次监测之后)",
            )
        )
    parts.append(
        _bi("first observation", "首次监测")
        + ": "
        + (_show_time(first) if first else _bi("none", "无"))
    )
    return "<br>".join(parts)


def _show_version(version: int | None) -> str:
    if version is None:
        return _bi("not issued (a computation)", "未签发(计算结果)")
    return _e(version)


def _yes_no(flag: bool) -> str:
    return _bi("yes", "是") if flag else _bi("no", "否")


def _row(cells: Sequence[str], numeric: Sequence[int] = (), classes: Mapping[int, str] | None = None) -> str:
    """A table row of already-escaped cells; ``numeric`` cells align right, ``classes`` adds a class."""
    tds = []
    for i, c in enumerate(cells):
        cls = " ".join(x for x in ("n" if i in numeric else "", (classes or {}).get(i, "")) if x)
        tds.append(f'<td class="{cls}">{c}</td>' if cls else f"<td>{c}</td>")
    return f"<tr>{''.join(tds)}</tr>"


def _head(cells: Sequence[str], numeric: Sequence[int] = ()) -> str:
    ths = "".join(
        f'<th class="n" scope="col">{c}</th>' if i in numeric else f'<th scope="col">{c}</th>'
        for i, c in enumerate(cells)
    )
    return f"<thead><tr>{ths}</tr></thead>"


#: Single faults are listed on the printed page while there are at most this many.
FAULTS_LISTED = 40


def _incident_html(inc: Mapping[str, Any]) -> str:
    en, zh = LEVEL_NAMES.get(inc["level"], (f"Level {inc['level']}", f"{inc['level']}级"))
    end = _show_time(inc["end"]) if inc["end"] is not None else _bi("open", "未恢复", "<br>")
    if inc["excluded"]:
        how = {"exclusion": ("third party", "第三方原因"), "maintenance": ("maintenance", "计划检修")}.get(
            inc.get("excluded_by") or "", ("", "")
        )
        excluded = _bi("yes", "是") + (f"<br>({_bi(*how)})" if how[0] else "")
    else:
        excluded = _bi("no", "否")
        status = inc.get("exclusion_status")
        if status:
            zh_status = {"requested": "已申请", "rejected": "已驳回"}.get(status, "")
            excluded += f"<br>({_bi(status, zh_status)})"
    d = inc["deductions"]
    deductions = " / ".join(_data(d[k], _show_number(d[k])) for k in ("response", "recovery", "unexplained"))
    restore = f"{_yes_no(inc['restore_met'])} (≤ {_show_duration(inc['restore_limit_s'])})"
    return _row(
        [
            f'{_e(inc["id"])}<span class="local">{_show_time(inc["start"])}</span>',
            _bi(en, zh, "<br>"),
            _e(inc["scope"]),
            _data(inc["peak_channels"], str(inc["peak_channels"])),
            _show_time(inc["ack"]) or "—",
            end,
            _show_duration(inc["response_s"]),
            _show_duration(inc["recovery_s"]),
            restore,
            excluded,
            deductions,
        ],
        numeric=(3, 6, 7, 10),
        classes={0: "id", 4: "t", 5: "t"},
    )


def html_from_json(data: Mapping[str, Any], *, claim_hour: int = 11) -> str:
    """The printable bilingual page of a :func:`report_json` dict."""
    contract = data["contract"]
    policy = data["policy"]
    month = data["month"]
    title_en, title_zh = "Monthly O&M assessment", "月度运维考核"
    base_rule = (
        _bi(
            "tariff: sum of the monthly fees of the circuits active in the month",
            "按资费标准:当月在用专线月费合计",
        )
        if data["base_rule"] == "tariff"
        else _bi("fixed monthly amount set by the policy", "固定月度金额(按考核规则)")
    )
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html>")
    add('<html lang="en">')
    add("<head>")
    add('<meta charset="utf-8">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add(
        f"<title>{_e(title_en)} / {_e(title_zh)} {_e(month)} — "
        f"{_e(contract['name'] or contract['id'])}</title>"
    )
    add(f"<style>{_CSS}</style>")
    add("</head>")
    add("<body>")
    add(f"<h1>{_bi(title_en, title_zh, ' / ')} — {_e(month)}</h1>")

    # header
    add('<table class="meta"><tbody>')
    meta: list[tuple[str, str]] = [
        (
            _bi("Contract", "合同"),
            f'{_e(contract["name"])} <span class="muted">({_e(contract["id"])})</span>',
        ),
        (_bi("Customer (Party A)", "客户(甲方)"), _e(contract["customer"]) or "—"),
        (_bi("Assessment month", "考核月份"), _e(month)),
        (
            _bi("Policy", "考核规则"),
            f'{_e(policy["name"])}<br><span class="hash">sha256 {_e(policy["hash"])}</span>',
        ),
        (_bi("Time zone", "时区"), _e(policy["timezone"])),
        (_bi("Monthly base", "月度基数"), base_rule),
        (_bi("As of", "评估截至"), _show_time(data["as_of"])),
        (_bi("Observed", "监测覆盖"), _observed(data)),
        (_bi("Report version", "报告版本"), _show_version(data["version"])),
        (_bi("Generated", "生成时间"), _show_time(data["generated_at"])),
    ]
    for label, value in meta:
        add(f'<tr><th scope="row">{label}</th><td>{value}</td></tr>')
    add("</tbody></table>")
    if data["projection"]:
        add(
            '<p class="projection">'
            + _bi(
                "Projection: the month is not over at the as-of time. The figures are the points "
                "already lost and the share that would be paid if nothing else happens.",
                "预估:截至评估时间本月尚未结束。以下为已扣分数及在此后不再发生扣分情况下的支付比例。",
                "<br>",
            )
            + "</p>"
        )

    # summary box
    add('<section class="summary" aria-label="summary">')
    summary = [
        (
            _bi("Online rate", "在线率", "<br>"),
            _data(data["online_rate"], _show_percent(data["online_rate"])),
        ),
        (_bi("Score", "得分", "<br>"), _data(data["score"], _show_number(data["score"]))),
        (_bi("Share paid", "支付比例", "<br>"), _data(data["share_paid"], _show_share(data["share_paid"]))),
        (_bi("Base (CNY)", "基数(元)", "<br>"), _data(data["base"], _show_money(data["base"]))),
        (_bi("Amount (CNY)", "金额(元)", "<br>"), _data(data["amount"], _show_money(data["amount"]))),
    ]
    for label, value in summary:
        add(f'<div><div class="label">{label}</div><div class="value">{value}</div></div>')
    add("</section>")
    cs = [
        (_bi("Channels", "点位数"), data["channels"]),
        (_bi("Expected channel-seconds", "应在线点位秒"), data["expected_channel_seconds"]),
        (_bi("Online", "在线"), data["online_channel_seconds"]),
        (_bi("Offline", "离线"), data["offline_channel_seconds"]),
        (_bi("Excluded", "不列入考核"), data["excluded_channel_seconds"]),
        (_bi("Blind (not observed)", "未监测"), data["blind_channel_seconds"]),
    ]
    if data.get("observed_channel_seconds") is not None:
        cs.append((_bi("Observed", "已监测"), data["observed_channel_seconds"]))
    add(
        '<p class="muted">'
        + "; ".join(f"{label}: {_data(v, _show_count(v))}" for label, v in cs)
        + " "
        + _bi("(channel-seconds)", "(点位秒)")
        + "</p>"
    )

    # items
    add(f"<h2>{_bi('Assessment items', '考核项目')}</h2>")
    add("<table>")
    add(
        _head(
            [_bi("Item", "项目"), _bi("Points", "分值"), _bi("Lost", "扣分"), _bi("Details", "说明")],
            numeric=(1, 2),
        )
    )
    add("<tbody>")
    for item in data["items"]:
        points = (
            _data(item["points"], _show_number(item["points"]))
            if item["points"] is not None
            else _bi("no cap", "不封顶")
        )
        add(
            _row(
                [
                    f"{_e(ITEM_NUMBERS.get(item['key'], item['key']))}. "
                    f"{_bi(item['title_en'], item['title_zh'])}",
                    points,
                    _data(item["lost"], _show_number(item["lost"])),
                    _e(item["details"]),
                ],
                numeric=(1, 2),
            )
        )
    add(
        f'<tr><th scope="row">{_bi("Score", "得分")}</th><td class="n">100</td>'
        f'<td class="n">{_data(data["score"], _show_number(data["score"]))}</td>'
        f"<td>{_bi('score = 100 − points lost (never below 0)', '得分 = 100 − 扣分(不低于0)')}</td></tr>"
    )
    add("</tbody></table>")

    # incidents: every graded one in full; single faults (below level 3) listed only while the page stays
    # printable. They score nothing, and every one of them is in the JSON and the CSV.
    graded = [i for i in data["incidents"] if i["level"] in (1, 2, 3)]
    faults = [i for i in data["incidents"] if i["level"] not in (1, 2, 3)]
    listed = graded + faults if len(faults) <= FAULTS_LISTED else graded
    add('<section class="wide">')  # printed on landscape pages: every column of an incident on one line
    add(f"<h2>{_bi('Incidents', '事件')} ({len(graded)} + {len(faults)} {_bi('faults', '单点故障')})</h2>")
    if len(listed) < len(data["incidents"]):
        add(
            '<p class="muted">'
            + _bi(
                f"{len(faults)} single faults (fewer than the level-3 threshold of channels) are not listed here; "
                "every incident is in the JSON and CSV forms of this report.",
                f"{len(faults)} 起单点故障(掉线路数未达三级事件)未在此列出;全部事件见本报告的 JSON 与 CSV 版本。",
            )
            + "</p>"
        )
    if listed:
        add('<table class="incidents">')
        add(
            _head(
                [
                    _bi("Incident, start (local)", "事件编号、开始时间", "<br>"),
                    _bi("Level", "级别"),
                    _bi("Scope", "范围"),
                    _bi("Peak", "最多掉线路数"),
                    _bi("Ack", "响应确认"),
                    _bi("End", "恢复"),
                    _bi("Response", "响应时长"),
                    _bi("Recovery", "恢复时长"),
                    _bi("Restored in time", "限时恢复"),
                    _bi("Excluded", "不列入考核"),
                    _bi("Deductions resp./rec./unexpl.", "扣分 响应/恢复/未说明"),
                ],
                numeric=(3, 6, 7, 10),
            )
        )
        add("<tbody>")
        for inc in listed:
            add(_incident_html(inc))
        add("</tbody></table>")
        add(
            '<p class="muted">'
            + _bi(
                "Response and recovery run from the clock start (the start, or the end of planned work), "
                "in h:mm:ss; open incidents are measured to the as-of time. An incident id carries its start "
                f"in UTC (…Z); every time shown is local ({policy['timezone']}).",
                "响应、恢复时长自计时起点(事件开始或计划检修结束)起算,格式 时:分:秒;"
                "未恢复事件计至评估截至时间。事件编号中的开始时间为 UTC(…Z);"
                f"表中其余时间均为本地时间({policy['timezone']})。",
            )
            + "</p>"
        )
    else:
        add(f"<p>{_bi('No incident started in the month.', '本月无事件。')}</p>")
    add("</section>")

    # areas
    add(f"<h2>{_bi('Online rate by area', '各乡镇在线率')}</h2>")
    add("<table>")
    add(_head([_bi("Area", "区域"), _bi("Online rate", "在线率")], numeric=(1,)))
    add("<tbody>")
    for area in data["areas"]:
        label = _e(area["id"]) + (f" {_e(area['name'])}" if area.get("name") else "")
        add(_row([label, _data(area["online_rate"], _show_percent(area["online_rate"]))], numeric=(1,)))
    add("</tbody></table>")

    # claim rule, findings
    add(f"<h2>{_bi(f'Daily {claim_hour}:00 claim rule', f'每日{claim_hour}:00领取规定')}</h2>")
    add(
        "<p>"
        + _bi("Breaches", "违规次数")
        + f": <strong>{_data(data['claim_breaches'], str(data['claim_breaches']))}</strong> "
        + _bi("(counted under item 4e)", "(计入巡检项 4e)")
        + "</p>"
    )
    breaches = data.get("claim_breach_list") or []
    if breaches:
        add(
            '<p class="muted">'
            + _bi(
                f"Each channel offline at {claim_hour}:00 whose offline stretch had begun at least the grace "
                "period before, not acknowledged by then and not excluded or under maintenance.",
                f"每日{claim_hour}:00 仍离线、离线已超过宽限时间、此前未响应确认且不属于免责或计划检修的点位。",
            )
            + "</p>"
        )
        add('<table class="breaches">')
        add(
            _head(
                [
                    "#",
                    _bi("Date", "日期"),
                    _bi("Channel", "点位"),
                    _bi("Offline since", "离线开始"),
                    _bi("Incident", "事件编号"),
                ],
                numeric=(0,),
            )
        )
        add("<tbody>")
        for n, b in enumerate(breaches, 1):
            since = b.get("stretch_start")
            add(
                _row(
                    [
                        str(n),
                        _show_date(b["at"]),
                        _e(b["channel"]),
                        _show_time(since) if since else "—",
                        _e(b["incident"]),
                    ],
                    numeric=(0,),
                    classes={1: "t", 3: "t", 4: "id"},
                )
            )
        add("</tbody></table>")
    add(f"<h2>{_bi('Findings', '检查发现')} ({len(data['findings'])})</h2>")
    if data["findings"]:
        add("<table>")
        add(
            _head(
                [
                    _bi("Time", "时间"),
                    _bi("Item", "项目"),
                    _bi("Points", "扣分"),
                    _bi("Note", "说明"),
                    _bi("By", "记录人"),
                    _bi("Evidence", "证据"),
                ],
                numeric=(2,),
            )
        )
        add("<tbody>")
        for f in data["findings"]:
            add(
                _row(
                    [
                        _show_time(f["at"]),
                        _e(f["item"]),
                        _data(f["points"], _show_number(f["points"])),
                        _e(f["note"]),
                        _e(f["by"] or ""),
                        _e(f["evidence"] or ""),
                    ],
                    numeric=(2,),
                )
            )
        add("</tbody></table>")
    else:
        add(f"<p>{_bi('No findings entered for the month.', '本月无检查发现记录。')}</p>")

    # signatures
    add(f"<h2>{_bi('Confirmation', '双方确认')}</h2>")
    add('<div class="signatures">')
    for party_en, party_zh, name in (
        ("Party A (customer)", "甲方(客户)", contract["customer"]),
        ("Party B (operator)", "乙方(运维方)", ""),
    ):
        add('<div class="party">')
        add(f"<h3>{_bi(party_en, party_zh)}</h3>")
        add(f'<p>{_bi("Name", "单位名称")}: <span class="line">{_e(name)}</span></p>')
        add(f'<p>{_bi("Representative signature", "代表签字")}: <span class="line"></span></p>')
        add(f'<p>{_bi("Stamp", "盖章")}:</p><div class="stamp"></div>')
        add(f'<p>{_bi("Date", "日期")}: <span class="line"></span></p>')
        add("</div>")
    add("</div>")
    if data["version"] is None:
        footer = _bi(
            f"A computation of {month} under policy {policy['name']}, not an issued version: "
            "only an issued version can be signed.",
            f"本页为 {month} 的计算结果(考核规则 {policy['name']}),并非已签发版本:只有签发的版本可以签字。",
        )
    else:
        footer = _bi(
            f"Report version {data['version']} of {month} under policy {policy['name']}; "
            "the JSON and CSV forms of this version carry the same figures.",
            f"本报告为 {month} 第 {data['version']} 版,考核规则 {policy['name']};"
            "同版本的 JSON、CSV 数据与本页一致。",
        )
    add(f'<p class="muted">{footer}</p>')
    add("</body>")
    add("</html>")
    return "\n".join(parts) + "\n"


def report_html(
    a: Assessment, *, version: int | None, generated_at: datetime, names: Mapping[str, str] | None = None
) -> str:
    """The report as a printable bilingual (English / Chinese) A4 HTML page with signature blocks."""
    data = report_json(a, version=version, generated_at=generated_at, names=names)
    return html_from_json(data, claim_hour=a.policy.claim_hour)


def render(
    a: Assessment,
    fmt: Format,
    *,
    version: int | None,
    generated_at: datetime,
    names: Mapping[str, str] | None = None,
) -> str:
    """The report in ``fmt``: ``json`` (indented, UTF-8 text), ``csv`` or ``html``."""
    if fmt == "json":
        data = report_json(a, version=version, generated_at=generated_at, names=names)
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return report_csv(a, version=version, generated_at=generated_at, names=names)
    if fmt == "html":
        return report_html(a, version=version, generated_at=generated_at, names=names)
    raise ValueError(f"unknown report format {fmt!r} (json, csv or html)")


def render_body(data: Mapping[str, Any], fmt: Format, *, claim_hour: int = 11) -> str:
    """A report body as :func:`report_json` made it (a stored version's) in ``fmt``: ``json`` (indented), ``csv``
    or ``html``; ``claim_hour`` is the policy's, for the HTML's wording of the claim rule."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return csv_from_json(data)
    if fmt == "html":
        return html_from_json(data, claim_hour=claim_hour)
    raise ValueError(f"unknown report format {fmt!r} (json, csv or html)")


def render_file(data: Mapping[str, Any], fmt: FileFormat, *, claim_hour: int = 11) -> bytes:
    """A report body as :func:`report_json` made it in any of :data:`FORMATS`, as the bytes of a file:
    ``json``, ``csv``, ``html`` (UTF-8, as :func:`render_body` writes them), ``zip`` (one CSV
    per table, UTF-8 with BOM) or ``pdf`` (:func:`monitor.report_pdf.pdf_from_json`; needs WeasyPrint)."""
    if fmt == "zip":
        return zip_from_json(data)
    if fmt == "pdf":
        from monitor.report_pdf import pdf_from_json

        return pdf_from_json(data, claim_hour=claim_hour)
    if fmt in ("json", "csv", "html"):
        return render_body(data, fmt, claim_hour=claim_hour).encode("utf-8")
    raise ValueError(f"unknown report format {fmt!r} ({', '.join(FORMATS)})")


#: Media types of the formats (HTTP ``Content-Type``).
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "zip": "application/zip",
    "pdf": "application/pdf",
}


def file_name(data: Mapping[str, Any], fmt: str) -> str:
    """A file name for a report body: ``slawatch-{contract}-{month}[-v{version}].{fmt}`` (ASCII)."""
    contract = data.get("contract", {}).get("id") or "report"
    version = data.get("version")
    suffix = "" if version is None else f"-v{version}"
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in str(contract))
    return f"slawatch-{safe}-{data['month']}{suffix}.{fmt}"
