"""apprise targets (the long tail: email, SMS gateways, Telegram...) tested through apprise's ``json://``
scheme pointed at the loopback receiver: the robots' bilingual title and body arrive, ``{secret}`` in the URL
is filled from the target's secret, a failing target is a failed delivery (retried, then parked), and a URL
apprise cannot use is refused when the rules are loaded. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import base64
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.alerts.ackpage import link_maker
from monitor.alerts.delivery import Delivery
from monitor.alerts.outbox import messages, outbox_counts, write_plans
from monitor.alerts.rules import AlertRules, IncidentFacts, TargetKind, plan_change, rules_from_mapping
from monitor.errors import PolicyError
from monitor.events import parse_event
from monitor.settings import AlertSettings
from monitor.storage import Database
from tests.alerts.builders import Clock, alerting_service
from tests.alerts.receivers import receiver

CPE3 = "CPE-0003@2026-10-09T18:00:00Z"


def json_url(http_url: str, path: str = "/apprise", userinfo: str = "") -> str:
    """apprise's generic JSON webhook at the receiver: ``json://[user:pass@]127.0.0.1:PORT/path``."""
    return http_url.replace("http://", f"json://{userinfo}") + path


def rules(url: str, **target: Any) -> AlertRules:
    return rules_from_mapping(
        {
            "escalation": {3: [{"role": "crew", "after_s": 0}]},
            "default_route": {"roles": {"crew": ["mail"]}},
            "targets": {"mail": {"kind": "apprise", "url": url, **target}},
        }
    )


async def open_incident(db: Database, alert_rules: AlertRules, clock: Clock) -> Delivery:
    links = link_maker("s", "http://127.0.0.1:8080", timedelta(hours=24))
    service, hook = await alerting_service(db, alert_rules, clock, links)
    event = parse_event({"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"})
    await service.ingest([("test", event)], source="test")
    settings = AlertSettings(backoff_s=60, backoff_max_s=600, max_attempts=3, timeout_s=5)
    return Delivery(db, alert_rules, settings, hook=hook, clock=clock)


async def test_an_apprise_target_gets_the_bilingual_message(sqlite_db: Database) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 1, tzinfo=UTC))
    with receiver() as rec:
        alert_rules = rules(json_url(rec.url), mentions=["13800000001"])
        assert alert_rules.targets["mail"].kind is TargetKind.APPRISE
        assert alert_rules.targets["mail"].quiet_hours  # read by people: quiet hours by default
        delivery = await open_incident(sqlite_db, alert_rules, clock)
        result = await delivery.round()
        await delivery.close()
        assert (result.sent, result.failed) == (1, 0)
        [body] = rec.bodies("/apprise")
    assert body["title"] == "【slawatch】三级 新故障 / Level 3 New incident: CPE-0003"
    assert body["type"] == "warning"
    text = body["message"]
    assert f"故障编号 Incident: {CPE3}" in text and "离线路数 Channels offline: 9" in text
    assert "[一键确认 Acknowledge](http://127.0.0.1:8080/ack/" in text and "13800000001" in text
    [message] = await messages(sqlite_db)
    assert f"alert {message.alert_id}" in text and "<font" not in text  # the id as plain text
    assert await outbox_counts(sqlite_db) == {("mail", "sent"): 1}


async def test_the_secret_fills_the_url(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 1, tzinfo=UTC))
    monkeypatch.setenv("SLAWATCH_TEST_APPRISE_PASS", "s3cret")
    with receiver() as rec:
        alert_rules = rules(json_url(rec.url, userinfo="oncall:{secret}@"), secret_env="SLAWATCH_TEST_APPRISE_PASS")
        delivery = await open_incident(sqlite_db, alert_rules, clock)
        assert (await delivery.round()).sent == 1
        await delivery.close()
        [request] = rec.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"oncall:s3cret").decode()


async def test_a_failing_apprise_target_is_retried_then_parked(sqlite_db: Database) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 1, tzinfo=UTC))
    with receiver() as rec:
        alert_rules = rules(json_url(rec.url))
        delivery = await open_incident(sqlite_db, alert_rules, clock)
        rec.fail_next = 1
        result = await delivery.round()
        assert (result.sent, result.failed, result.parked) == (0, 1, 0)
        [message] = await messages(sqlite_db)
        assert message.status == "pending" and message.attempts == 1
        assert "apprise could not notify json://127.0.0.1" in (message.last_error or "")
        assert "500" in (message.last_error or "")
        clock.now += timedelta(seconds=60)  # the retry: the receiver answers now
        assert (await delivery.round()).sent == 1
        assert len(rec.bodies("/apprise")) == 1
        await delivery.close()

    # A target that stays down (nothing listens any more): retried with backoff, then parked.
    clock.now = datetime(2026, 10, 9, 19, 0, tzinfo=UTC)
    dead = rules(json_url(rec.url))
    delivery = Delivery(sqlite_db, dead, AlertSettings(backoff_s=60, max_attempts=3, timeout_s=5), clock=clock)
    facts = IncidentFacts("default", "T02@2026-10-09T19:00:00Z", "T02", ("T02",), 3, 9, 9, clock.now)
    planned, state = plan_change(dead, None, facts, clock.now)
    assert state is not None and planned
    await write_plans(sqlite_db, [state], planned, clock.now)
    results = []
    for _ in range(3):
        results.append(await delivery.round())
        clock.now += timedelta(seconds=600)
    await delivery.close()
    assert [(r.failed, r.parked) for r in results] == [(1, 0), (1, 0), (1, 1)]
    assert await outbox_counts(sqlite_db) == {("mail", "sent"): 1, ("mail", "parked"): 1}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("nosuchscheme://127.0.0.1/x", "not an apprise URL"),
        ("json://u:{secret}@127.0.0.1:9/x", "no secret"),
    ],
)
def test_an_apprise_url_it_cannot_use_is_refused_at_load(url: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why) as caught:
        rules(url)
    assert caught.value.field == "targets.mail.url"


def test_loading_an_apprise_target_contacts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A placeholder mail URL loads: parsing only (no DNS, no SMTP: the socket layer refuses both here)."""

    def refuse(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("loading the rules tried the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    target = rules("mailtos://user:pass@example.com?to=oncall@example.com").targets["mail"]
    assert target.url == "mailtos://user:pass@example.com?to=oncall@example.com"
