"""``deploy/alerts.example.yaml`` is a valid rules file: every target a route names exists, with its secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerts.rules import TargetKind, load_rules

EXAMPLE = Path(__file__).parent.parent.parent / "deploy" / "alerts.example.yaml"


def test_the_example_rules_load(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = ("SLAWATCH_DINGTALK_SECRET", "SLAWATCH_FEISHU_SECRET", "SLAWATCH_HOOK_SECRET", "SLAWATCH_SMTP_PASSWORD")
    for name in secrets:
        monkeypatch.setenv(name, f"secret-of-{name}")
    rules = load_rules(EXAMPLE)
    assert rules.levels == frozenset({1, 2, 3}) and rules.repeat_every_s == 1800
    assert {
        "mqtt", "wecom-all", "wecom-t01", "dingtalk-sup", "feishu-mgr", "alertmanager", "hook", "mail-mgr"
    } <= set(rules.targets)
    assert rules.targets["dingtalk-sup"].secret == "secret-of-SLAWATCH_DINGTALK_SECRET"
    assert rules.targets["mail-mgr"].kind is TargetKind.APPRISE
    assert rules.targets["mail-mgr"].secret == "secret-of-SLAWATCH_SMTP_PASSWORD"
