"""``slawatch replay`` says which polls it could not apply (R7, issue item 6), and ``slawatch events export``
writes a stream whose replay into a fresh database gives the same report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
AS_OF = "2026-11-20T00:00:00+08:00"


def polls(path: Path, node: str, day: int, hours: range, ok: bool) -> Path:
    lines = [
        json.dumps({"type": "poll", "at": f"2026-10-{day:02d}T{h:02d}:00:00+08:00", "node": node, "ok": ok})
        for h in hours
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def report(*extra: str) -> dict[str, Any]:
    code, out, err = run("report", "2026-10", "--as-of", AS_OF, *extra)
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    return body


def test_polls_of_an_earlier_file_replayed_after_a_later_one_are_reported_not_applied(env: Path) -> None:
    """An 8 h outage in early.jsonl (CPE-0002 failing 08:00..15:00 on the 3rd), replayed after late.jsonl (polls
    of the 4th): its polls are older than the node's last applied poll, so they are not applied, and the
    replay says so, file and line, instead of dropping them silently."""
    assert run("inventory", "import", str(SMALL))[0] == 0
    late = polls(env / "late.jsonl", "CPE-0002", 4, range(8, 10), ok=True)
    early = polls(env / "early.jsonl", "CPE-0002", 3, range(8, 16), ok=False)
    assert run("replay", str(late))[0] == 0
    code, _out, err = run("replay", str(early))
    assert code == 0, err
    assert "8 polls not applied" in err
    assert f"not applied: {early}:1: poll dated 2026-10-03T00:00:00Z is not after the last applied poll" in err
    assert report()["incidents"] == []  # nothing was applied: and the replay said why


def test_an_exported_stream_replays_to_the_same_report(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = env / "sample.csv"
    assert run("inventory", "sample", "-o", str(sample))[0] == 0
    assert run("inventory", "import", str(sample))[0] == 0
    month = env / "month.jsonl"
    assert run("sample-events", "2026-10", "-o", str(month))[0] == 0
    assert run("replay", str(month))[0] == 0
    exported = env / "exported.jsonl"
    code, _out, err = run("events", "export", "-o", str(exported))
    assert code == 0, err
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert lines and all("known_at" in e for e in lines)
    assert not any(e["type"] == "poll" for e in lines)  # polls are confirmed into state events
    first = report()
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(env / "fresh"))
    assert run("inventory", "import", str(sample))[0] == 0
    assert run("replay", str(exported))[0] == 0
    again = report()
    assert first["incidents"], "the sample month has incidents"
    drop = ("generated_at",)
    assert {k: v for k, v in again.items() if k not in drop} == {k: v for k, v in first.items() if k not in drop}
