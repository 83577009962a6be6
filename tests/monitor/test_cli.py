"""The ``slawatch`` command: exit codes, messages naming file/line/field, nothing stored on bad input."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

from tests.cli import run

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"


def test_every_command_explains_itself() -> None:
    for args in (
        [],
        ["inventory"],
        ["inventory", "import"],
        ["inventory", "validate"],
        ["inventory", "export"],
        ["inventory", "sample"],
        ["replay"],
        ["report"],
        ["token", "create"],
        ["contract", "import"],
        ["db", "upgrade"],
        ["demo"],
        ["serve"],
        ["sample-events"],
        ["evidence", "add"],
        ["run"],
        ["status"],
        ["lab"],
        ["lab", "up"],
        ["lab", "fail"],
        ["lab", "scenario"],
    ):
        code, out, _ = run(*args, "--help")
        assert code == 0, args
        assert "Usage:" in out and len(out.splitlines()) > 4, args


def test_bad_inventory_names_file_line_and_field(env: Path) -> None:
    bad = env / "bad.csv"
    bad.write_text("id,kind,parent\nT1,area,\nCPE-1,cpe,T9\n")
    code, _, err = run("inventory", "validate", str(bad))
    assert code == 2
    assert f"{bad}:3: field 'parent': parent 'T9' does not exist" in err
    code, _, err = run("inventory", "import", str(bad))
    assert code == 2 and "parent 'T9' does not exist" in err
    code, out, _ = run("inventory", "export")
    assert code == 0 and out.strip().count("\n") == 0  # header only: nothing was stored


def test_import_replay_report(env: Path) -> None:
    code, out, _ = run("inventory", "import", str(SMALL))
    assert code == 0 and "13 added" in out
    code, out, _ = run("inventory", "import", str(SMALL))
    assert code == 0 and "0 added, 0 changed, 0 removed" in out
    events = env / "oct.jsonl"
    lines = [
        {"type": "state", "at": "2026-10-03T08:00:00", "node": "CPE-0002", "state": "down"},
        {"type": "state", "at": "2026-10-03T10:00:00", "node": "CPE-0002", "state": "up"},
    ]
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out, _ = run("replay", str(events))
    assert code == 0 and "2 stored" in out
    code, out, _ = run("replay", str(events))
    assert code == 0 and "0 stored, 2 already known" in out
    early = env / "early-ack.jsonl"
    early.write_text('{"type":"ack","at":"2026-10-04T08:00:00","node":"CPE-0001","by":"crew-1"}\n')
    code, _, err = run("replay", str(early))
    assert code == 0
    assert f"note: {early}:1: ack stored but applied to nothing: no incident to apply it to" in err
    code, out, _ = run("report", "2026-10", "--as-of", "2026-11-01T00:00:00+08:00")
    body = json.loads(out)
    # Times without an offset are read in Asia/Shanghai: 08:00 local is 00:00Z.
    assert [i["id"] for i in body["incidents"]] == ["CPE-0002@2026-10-03T00:00:00Z"]
    assert body["version"] is None  # computed, not issued: nothing stored (R9)
    code, out, _ = run("report", "2026-10", "--format", "csv", "--as-of", "2026-11-01T00:00:00+08:00")
    assert code == 0 and out.startswith("id,level,scope")


def test_bad_events_name_line_and_field_and_store_nothing(env: Path) -> None:
    assert run("inventory", "import", str(SMALL))[0] == 0
    events = env / "bad.jsonl"
    events.write_text(
        '{"type":"state","at":"2026-10-03T08:00:00Z","node":"CPE-0002","state":"down"}\n'
        '{"type":"state","at":"2026-10-03T09:00:00Z","node":"CPE-0002","state":"sideways"}\n'
    )
    code, _, err = run("replay", str(events))
    assert code == 2
    assert f"{events}:2: field 'state': expected 'down', 'up' or 'unknown', got 'sideways'" in err
    events.write_text('{"type":"state","at":"2026-10-03T08:00:00Z","node":"CAM-9","state":"down"}\n')
    code, _, err = run("replay", str(events))
    assert code == 2 and f"{events}:1: field 'node': node 'CAM-9' is not in the inventory" in err
    events.write_text(
        '{"type":"state","at":"2026-10-03T09:00:00Z","node":"CPE-0002","state":"down"}\n'
        '{"type":"state","at":"2026-10-03T08:00:00Z","node":"CPE-0002","state":"up"}\n'
    )
    code, _, err = run("replay", str(events))
    assert code == 2 and f"{events}:2: field 'at': events must be in time order" in err
    code, out, _ = run("report", "2026-10", "--as-of", "2026-11-01T00:00:00Z")
    assert json.loads(out)["incidents"] == []


def test_bad_month_and_format(env: Path) -> None:
    code, _, err = run("report", "2026-13")
    assert code == 2 and "month '2026-13' is not YYYY-MM" in err
    code, _, err = run("report", "2026-10", "--format", "xlsx")
    assert code == 2 and "--format 'xlsx' is not json, csv, html, zip or pdf" in err


def test_evidence_is_kept_by_content_hash(env: Path) -> None:
    photo = env / "cut.jpg"
    photo.write_bytes(b"\xff\xd8 a photo of a cut fibre")
    code, out, _ = run("evidence", "add", str(photo), "--by", "crew-3")
    import hashlib

    assert code == 0 and out.strip() == "sha256:" + hashlib.sha256(photo.read_bytes()).hexdigest()
    code, _, err = run("evidence", "add", str(env / "missing.jpg"), "--by", "crew-3")
    assert code == 2 and "missing.jpg: cannot read" in err


def test_demo_without_serving_replays_and_reports(env: Path) -> None:
    """The README's run command, minus the long-running part: sample network, last month, its report."""
    code, out, err = run("demo", "--no-serve")
    assert code == 0, err
    assert "inventory: sample network, 3073 channels (3346 added" in out
    assert "replayed" in out and "events" in out
    m = re.search(r"score ([\d.]+), share paid (\d+)%, amount ([\d.]+) of ([\d.]+) CNY", out)
    assert m is not None, out
    score, share, amount, base = Decimal(m[1]), Decimal(m[2]) / 100, Decimal(m[3]), Decimal(m[4])
    # The base is the tariff sum of circuits active in the month: 61,875 less any decommissioned before it.
    assert Decimal(60_000) < base <= Decimal(61_875)
    assert amount == (base * share).quantize(Decimal("0.01")) and Decimal(0) <= score <= 100
    assert "admin token demo-admin (" in out
    # where the points went: one line per item that lost any, the 11:00 breaches named
    lost = re.search(r"^points lost: ([\d.]+) \(score ([\d.]+)\)$", out, re.M)
    assert lost is not None and Decimal(lost[1]) + Decimal(lost[2]) == 100 and Decimal(lost[2]) == score
    assert re.search(r"^  4e −[\d.]+( \(all 30\))?: \d+ breaches of the 11:00 rule", out, re.M), out
    # Running it again changes nothing already stored: identical events are one event.
    code, out, _ = run("demo", "--no-serve")
    assert code == 0 and "0 changed, 0 removed" in out and " 0 new" in out
