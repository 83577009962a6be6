"""``slawatch report``: computing stores nothing; ``--issue``, ``report versions`` and ``report sign`` (SPEC R9).

The README's ``slawatch report MONTH --format html -o f.html`` keeps working beside the subcommands; the demo
computes and prints last month's report without issuing a version (issue 7, items 7 and 10).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli import run

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
AS_OF = "2026-11-01T00:00:00+08:00"


def replay(env: Path, name: str, *lines: dict[str, str]) -> None:
    events = env / name
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run("replay", str(events))
    assert code == 0, err


def test_report_subcommands_explain_themselves() -> None:
    for args, words in (
        (["report"], ("versions", "sign", "--issue", "nothing is")),
        (["report", "show"], ("--issue", "--reason", "--as-of", "--format", "stores nothing")),
        (["report", "versions"], ("issued versions", "SIGNED")),
        (["report", "sign"], ("closed", "--by", "--reason")),
    ):
        code, out, _ = run(*args, "--help")
        assert code == 0, args
        text = " ".join(out.split())
        assert "Usage:" in out and all(w in text for w in words), (args, out)


def test_issue_list_sign_and_a_closed_month(env: Path) -> None:
    assert run("inventory", "import", str(SMALL))[0] == 0
    replay(
        env,
        "oct.jsonl",
        {"type": "state", "at": "2026-10-03T08:00:00", "node": "CPE-0002", "state": "down"},
        {"type": "state", "at": "2026-10-03T10:00:00", "node": "CPE-0002", "state": "up"},
    )
    # Computing, in every form, stores nothing.
    for fmt in ("json", "csv", "html"):
        code, out, err = run("report", "2026-10", "--format", fmt, "--as-of", AS_OF)
        assert code == 0, err
    code, out, _ = run("report", "2026-10", "--as-of", AS_OF)
    computed = json.loads(out)
    assert computed["version"] is None
    code, out, _ = run("report", "versions", "2026-10")
    assert code == 0 and out.strip() == "no versions of 2026-10 issued (contract default)"

    # Issue: the stored version is printed; the same text comes back from the list's version.
    code, out, err = run("report", "2026-10", "--issue", "--as-of", AS_OF, "--by", "alice")
    assert code == 0, err
    assert "issued version 1 of 2026-10" in err
    issued = json.loads(out)
    assert issued["version"] == 1 and issued["score"] == computed["score"] and issued["as_of"] == AS_OF
    code, out, _ = run("report", "versions", "2026-10", "--json")
    listed = json.loads(out)["versions"]
    assert [(v["version"], v["issued_by"], v["signed"], v["as_of"]) for v in listed] == [(1, "alice", False, AS_OF)]
    code, out, _ = run("report", "versions", "2026-10")
    assert re.match(r"v1\tas of 2026-11-01T00:00:00\+08:00\tissued .* by alice\tpolicy [0-9a-f]{12}\tnot signed", out)

    code, out, err = run("report", "sign", "2026-10", "1", "--by", "assessor-wang")
    assert code == 0, err
    assert "signed version 1 of 2026-10 (contract default) by assessor-wang: closed" in out
    code, _, err = run("report", "sign", "2026-10", "1", "--by", "assessor-wang")
    assert code == 2 and "already the signed one" in err
    code, _, err = run("report", "sign", "2026-10", "5", "--by", "assessor-wang")
    assert code == 2 and "no version 5" in err

    # Closed: a new event dated in October is accepted, the signed figures stay, the recomputation moves.
    replay(env, "late.jsonl", {"type": "state", "at": "2026-10-20T08:00:00", "node": "CPE-0003", "state": "down"})
    code, out, _ = run("report", "2026-10")
    closed = json.loads(out)
    assert closed["closed"] is True and closed["signed"] == issued
    assert closed["changes_since_signature"]["events_received"] == 1
    assert closed["changes_since_signature"]["events"][0]["source"] == "replay:late.jsonl"
    assert closed["recomputed"]["score"] < issued["score"]
    page = env / "2026-10.html"
    code, _, err = run("report", "2026-10", "--format", "html", "-o", str(page))
    assert code == 0 and f"wrote {page}" in err
    assert f'<data value="{json.dumps(issued["score"])}">' in page.read_text()  # the signed version

    code, _, err = run("report", "2026-10", "--issue")
    assert code == 2 and "needs a stated reason" in err
    code, _, err = run("report", "2026-10", "--reason", "late outage")
    assert code == 2 and "--reason and --by go with --issue" in err
    code, out, err = run("report", "2026-10", "--issue", "--reason", "CPE-0003 outage filed late", "--format", "csv")
    assert code == 0 and "issued version 2 of 2026-10" in err and out.startswith("id,level,scope")
    code, _, err = run("report", "sign", "2026-10", "2", "--by", "assessor-wang")
    assert code == 0, err
    code, out, _ = run("report", "versions", "2026-10")
    lines = out.strip().splitlines()
    assert "superseded by v2" in lines[0]
    assert "SIGNED by assessor-wang" in lines[1] and "reason: CPE-0003 outage filed late" in lines[1]


def test_bad_input_to_the_subcommands(env: Path) -> None:
    assert run("inventory", "import", str(SMALL))[0] == 0
    code, _, err = run("report", "versions", "2026-13")
    assert code == 2 and "is not YYYY-MM" in err
    code, _, err = run("report", "sign", "2026-10", "0", "--by", "x")
    assert code == 2
    code, _, err = run("report", "sign", "2026-10", "1")
    assert code == 2 and "--by" in err
    code, _, err = run("report", "2026-10", "--issue", "--as-of", "2099-01-01T00:00:00Z")
    assert code == 2 and "as of now or earlier" in err
    code, out, _ = run("report", "versions", "2026-10")
    assert out.startswith("no versions")


def test_demo_computes_and_issues_nothing(env: Path) -> None:
    code, out, err = run("demo", "--no-serve")
    assert code == 0, err
    m = re.search(r"report (\d{4}-\d{2}) \(computed, not issued\): online rate", out)
    assert m is not None, out
    code, out, _ = run("report", "versions", m[1])
    assert code == 0 and out.startswith(f"no versions of {m[1]} issued")
