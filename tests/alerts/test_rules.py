"""The alert planner, pure: rules as data, open / level rise / ack / onsite / resolve, escalation steps, repeats,
quiet hours (never for level 1), routing by area with a default route. Every time is written out (UTC; the
quiet hours are Asia/Shanghai, UTC+8: 22:00-07:00 local is 14:00-23:00 UTC)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.alerts.rules import (
    AlertState,
    IncidentFacts,
    Kind,
    PlannedAlert,
    load_rules,
    plan_change,
    plan_due,
    rules_from_mapping,
)
from monitor.errors import PolicyError

RULES_DATA: dict[str, Any] = {
    "repeat_every_s": 1800,
    "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Asia/Shanghai"},
    "escalation": {
        1: [
            {"role": "crew", "after_s": 0},
            {"role": "supervisor", "after_response": 0.5},
            {"role": "manager", "after_response": 1},
        ],
        3: [{"role": "crew", "after_s": 0}, {"role": "supervisor", "after_s": 3600}],
    },
    "routes": [{"under": "T01", "roles": {"crew": ["wecom-t01"]}}],
    "default_route": {
        "roles": {"crew": ["wecom-all"], "supervisor": ["ding-sup"], "manager": ["feishu-mgr"]},
        "always": ["mqtt"],
    },
    "targets": {
        "mqtt": {"kind": "mqtt", "url": "mqtt://127.0.0.1:1883"},
        "wecom-t01": {"kind": "wecom", "url": "http://127.0.0.1:9/wecom", "mentions": ["13800000001"]},
        "wecom-all": {"kind": "wecom", "url": "http://127.0.0.1:9/wecom-all"},
        "ding-sup": {"kind": "dingtalk", "url": "http://127.0.0.1:9/ding", "secret": "SECx"},
        "feishu-mgr": {"kind": "feishu", "url": "http://127.0.0.1:9/feishu", "secret": "fs"},
    },
}
RULES = rules_from_mapping(RULES_DATA)


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def facts(**kw: Any) -> IncidentFacts:
    base = IncidentFacts(
        contract_id="default",
        incident_id="CPE-0003@2026-10-03T02:00:00Z",
        scope="CPE-0003",
        path=("T01", "T01-B2", "CPE-0003"),
        level=3,
        peak=9,
        offline=9,
        start=utc("2026-10-03T02:00:00Z"),
        response_limit_s=8 * 3600,
        recovery_limit_s=8 * 3600,
        restore_limit_s=2 * 3600,
        timezone="Asia/Shanghai",
    )
    return replace(base, **kw)


def sent(alerts: list[PlannedAlert]) -> list[tuple[str, str]]:
    return [(a.kind.value, a.target) for a in alerts]


def links(contract: str, incident: str, now: datetime) -> dict[str, str]:
    return {"ack": f"http://127.0.0.1:8080/ack/{contract}:{incident}:{int(now.timestamp())}"}


def test_a_level_3_incident_through_its_life() -> None:
    f = facts()
    # 10:00 local: not quiet. The township's crew (route T01) and the always target (default route) hear it.
    alerts, state = plan_change(RULES, None, f, utc("2026-10-03T02:00:00Z"), links=links)
    assert sent(alerts) == [("opened", "wecom-t01"), ("opened", "mqtt")]
    assert state is not None and state.engaged == ("crew",)
    # The repeat (30 min) comes before the supervisor's step (1 h).
    assert state.next_repeat == utc("2026-10-03T02:30:00Z") and state.next_due == utc("2026-10-03T02:30:00Z")
    opened = alerts[0]
    assert opened.alert_id == "default/CPE-0003@2026-10-03T02:00:00Z/opened" == alerts[1].alert_id
    assert opened.id != alerts[1].id and opened.due == utc("2026-10-03T02:00:00Z")
    p = opened.payload
    assert (p["level"], p["scope"], p["area"], p["channels_offline"], p["start"]) == (
        3, "CPE-0003", "T01", 9, "2026-10-03T02:00:00Z"
    )
    assert p["clocks"] == {"response_left_s": 8 * 3600, "recovery_left_s": 8 * 3600, "restore_left_s": 2 * 3600}
    stamp = int(utc("2026-10-03T02:00:00Z").timestamp())
    assert p["links"]["ack"] == f"http://127.0.0.1:8080/ack/default:CPE-0003@2026-10-03T02:00:00Z:{stamp}"

    # The same facts again: nothing new.
    again, same = plan_change(RULES, state, f, utc("2026-10-03T02:05:00Z"))
    assert again == [] and same == state

    # Timers: nothing before 02:30; the first repeat at 02:30; at 03:00 the supervisor's step and repeat 2.
    assert plan_due(RULES, state, utc("2026-10-03T02:29:59Z"))[0] == []
    alerts, state = plan_due(RULES, state, utc("2026-10-03T02:30:00Z"))
    assert sent(alerts) == [("repeat", "wecom-t01"), ("repeat", "mqtt")]
    assert alerts[0].payload["repeat"] == 1 and alerts[0].payload["clocks"]["response_left_s"] == 7.5 * 3600
    alerts, state = plan_due(RULES, state, utc("2026-10-03T03:00:00Z"))
    assert sent(alerts) == [
        ("escalation", "ding-sup"),  # the route names no supervisor: the default route's
        ("escalation", "mqtt"),
        ("repeat", "wecom-t01"),
        ("repeat", "ding-sup"),
        ("repeat", "mqtt"),
    ]
    assert alerts[0].payload["role"] == "supervisor"
    assert state.engaged == ("crew", "supervisor") and state.next_due == utc("2026-10-03T03:30:00Z")

    # 03:10: 20 channels offline, level 1. Everyone engaged hears it; level 1's manager step is 4 h from the
    # start (06:00), its supervisor step (2 h) is engaged already.
    f1 = replace(f, level=1, peak=20, offline=20, response_limit_s=4 * 3600)
    alerts, state = plan_change(RULES, state, f1, utc("2026-10-03T03:10:00Z"))
    assert sent(alerts) == [("level", "wecom-t01"), ("level", "ding-sup"), ("level", "mqtt")]
    assert alerts[0].alert_id.endswith("/level1")
    assert alerts[0].payload["clocks"]["response_left_s"] == 2 * 3600 + 50 * 60  # to 06:00
    assert state is not None and state.next_due == utc("2026-10-03T03:30:00Z")

    # 03:20 acknowledged by the crew: no more repeats or steps.
    fa = replace(f1, ack=utc("2026-10-03T03:20:00Z"), ack_by="Wang")
    alerts, state = plan_change(RULES, state, fa, utc("2026-10-03T03:20:00Z"))
    assert sent(alerts) == [("ack", "wecom-t01"), ("ack", "ding-sup"), ("ack", "mqtt")]
    assert alerts[0].payload["ack_by"] == "Wang" and alerts[0].payload["clocks"]["response_left_s"] is None
    assert state is not None and state.next_due is None and state.next_repeat is None
    assert plan_due(RULES, state, utc("2026-10-03T06:00:00Z"))[0] == []

    # On site, then resolved (both in one change): in that order.
    fe = replace(fa, onsite=utc("2026-10-03T04:00:00Z"), end=utc("2026-10-03T05:00:00Z"), offline=0)
    alerts, state = plan_change(RULES, state, fe, utc("2026-10-03T05:00:30Z"))
    assert [a.kind for a in alerts] == [Kind.ONSITE] * 3 + [Kind.RESOLVED] * 3
    assert alerts[-1].payload["open"] is False and alerts[-1].payload["end"] == "2026-10-03T05:00:00Z"
    assert state is not None and state.ended
    # Ended: later changes (an explanation rewrites the projection) plan nothing.
    assert plan_change(RULES, state, fe, utc("2026-10-03T06:00:00Z"))[0] == []


def test_level_1_escalates_to_the_manager_at_the_response_limit() -> None:
    f = facts(level=1, peak=25, offline=25, response_limit_s=4 * 3600, scope="T02", path=("T02",),
              incident_id="T02@2026-10-03T02:00:00Z")
    alerts, state = plan_change(RULES, None, f, utc("2026-10-03T02:00:00Z"))
    # Not under T01: the default route's crew.
    assert sent(alerts) == [("opened", "wecom-all"), ("opened", "mqtt")]
    assert state is not None
    steps = []
    now = utc("2026-10-03T02:00:00Z")
    while now <= utc("2026-10-03T06:00:00Z"):
        out, state = plan_due(RULES, state, now)
        steps += [(a.payload["at"], a.target) for a in out if a.kind is Kind.ESCALATION]
        now += timedelta(minutes=10)
    assert steps == [
        ("2026-10-03T04:00:00Z", "ding-sup"),
        ("2026-10-03T04:00:00Z", "mqtt"),
        ("2026-10-03T06:00:00Z", "feishu-mgr"),
        ("2026-10-03T06:00:00Z", "mqtt"),
    ]


def test_quiet_hours_defer_robots_drop_repeats_and_never_apply_to_level_1() -> None:
    # 23:00 local (15:00Z): inside quiet hours, which end at 07:00 local (23:00Z).
    f = facts(start=utc("2026-10-03T15:00:00Z"), incident_id="CPE-0003@2026-10-03T15:00:00Z")
    alerts, state = plan_change(RULES, None, f, utc("2026-10-03T15:00:00Z"))
    due = {a.target: a.due for a in alerts}
    assert due == {"wecom-t01": utc("2026-10-03T23:00:00Z"), "mqtt": utc("2026-10-03T15:00:00Z")}
    assert state is not None
    alerts, state = plan_due(RULES, state, utc("2026-10-03T15:30:00Z"))
    assert sent(alerts) == [("repeat", "mqtt")]  # the robot's repeat is dropped, not piled up
    # Level 1 at 15:40Z, still quiet: it goes at once to every target.
    f1 = replace(f, level=1, peak=20, offline=20, response_limit_s=4 * 3600)
    alerts, _ = plan_change(RULES, state, f1, utc("2026-10-03T15:40:00Z"))
    assert {(a.target, a.due) for a in alerts} == {
        ("wecom-t01", utc("2026-10-03T15:40:00Z")),
        ("mqtt", utc("2026-10-03T15:40:00Z")),
    }
    # A quiet period that does not cross midnight: 12:00-14:00 local.
    rules = rules_from_mapping({**RULES_DATA, "quiet_hours": {"start": "12:00", "end": "14:00"}})
    noon = facts(start=utc("2026-10-03T04:30:00Z"))
    alerts, _ = plan_change(rules, None, noon, utc("2026-10-03T04:30:00Z"))  # 12:30 local
    assert {a.target: a.due for a in alerts}["wecom-t01"] == utc("2026-10-03T06:00:00Z")


def test_faults_do_not_alert_until_they_reach_a_level() -> None:
    f0 = facts(level=0, peak=3, offline=3, response_limit_s=None, recovery_limit_s=None)
    assert plan_change(RULES, None, f0, utc("2026-10-03T02:00:00Z")) == ([], None)
    # Rising to level 3 later: that is when it opens for the crews.
    alerts, state = plan_change(RULES, None, facts(), utc("2026-10-03T02:05:00Z"))
    assert sent(alerts) == [("opened", "wecom-t01"), ("opened", "mqtt")] and state is not None


def test_history_seen_first_on_a_rebuild_calls_nobody() -> None:
    old = facts(end=utc("2026-10-03T05:00:00Z"), offline=0)
    assert plan_change(RULES, None, old, utc("2026-10-05T00:00:00Z")) == ([], None)
    # Within the horizon it is told, opened then resolved, to the roles whose steps had come by then.
    alerts, state = plan_change(RULES, None, old, utc("2026-10-03T05:30:00Z"))
    assert sent(alerts) == [
        ("opened", "wecom-t01"), ("opened", "ding-sup"), ("opened", "mqtt"),
        ("resolved", "wecom-t01"), ("resolved", "ding-sup"), ("resolved", "mqtt"),
    ]
    assert state is not None and state.ended and state.next_due is None


def test_notify_limits_what_roles_hear_but_machines_hear_everything() -> None:
    rules = rules_from_mapping({**RULES_DATA, "notify": ["opened", "resolved"]})
    _, state = plan_change(rules, None, facts(), utc("2026-10-03T02:00:00Z"))
    assert state is not None
    fa = facts(ack=utc("2026-10-03T02:10:00Z"), ack_by="Li")
    alerts, _ = plan_change(rules, state, fa, utc("2026-10-03T02:10:00Z"))
    assert sent(alerts) == [("ack", "mqtt")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"default_route": {"roles": {"crew": ["nobody"]}}}, "default_route.roles.crew"),
        ({"routes": [{"roles": {}}]}, "routes[0].under"),
        ({"escalation": {1: [{"role": "crew"}]}}, "escalation.1[0]"),
        ({"escalation": {5: []}}, "escalation.5"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"targets": {"x": {"kind": "pager", "url": "http://127.0.0.1/"}}}, "targets.x.kind"),
        ({"targets": {"x": {"kind": "webhook", "url": "nowhere"}}}, "targets.x.url"),
        ({"notify": ["repeat"]}, "notify"),
        ({"repeat_every_s": -1}, "repeat_every_s"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_rules_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as info:
        rules_from_mapping({**RULES_DATA, **change})
    assert info.value.field == field


def test_rules_file_and_state_round_trip(tmp_path: Any) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "repeat_every_s: 600\n"
        "default_route: {roles: {crew: [hook]}}\n"
        "targets: {hook: {kind: webhook, url: 'http://127.0.0.1:9/', secret_env: SLW_TEST_HOOK}}\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        load_rules(path)
    assert info.value.field == "targets.hook.secret_env" and info.value.where == str(path)
    mp = pytest.MonkeyPatch()
    mp.setenv("SLW_TEST_HOOK", "s3cret")
    try:
        rules = load_rules(path)
    finally:
        mp.undo()
    assert rules.targets["hook"].secret == "s3cret" and rules.repeat_every_s == 600
    assert rules.targets["hook"].quiet_hours is False  # machines do not sleep
    f = facts(ack=utc("2026-10-03T02:10:00Z"), ack_by="Li")
    assert IncidentFacts.from_json(f.to_json()) == f
    assert AlertState(f).facts.from_json(f.to_json()) == f


def test_the_documented_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    import textwrap

    import yaml

    from monitor.alerts import rules as module

    doc = module.__doc__ or ""
    example = textwrap.dedent(doc.split("Example::\n", 1)[1].split("\n\n", 1)[0])
    for name in ("DING_SEC", "FEISHU_SEC", "HOOK_SEC", "SMTP_PASS"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    parsed = rules_from_mapping(yaml.safe_load(example))
    assert parsed.route_for(("T01", "T01-B1", "CPE-0001")).roles["crew"] == ("wecom-t01",)
    assert parsed.route_for(("T01",)).roles["manager"] == ("feishu-mgr",)
    assert parsed.route_for(("T02",)).roles["crew"] == ("wecom-all",)
    assert parsed.targets["dingtalk-sup"].secret == "ding_sec-value" and parsed.targets["dingtalk-sup"].quiet_hours
    assert parsed.escalation[1][1].delay(4 * 3600) == timedelta(hours=2)
    assert parsed.targets["mail-noc"].kind == "apprise" and parsed.targets["mail-noc"].secret == "smtp_pass-value"
