"""deploy/prometheus: the scrape config and the alerting rules pass ``promtool check`` and the rules' unit tests."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy.tools import DEPLOY, tool

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS, check=False
    )


def test_config_is_valid_and_finds_the_rules() -> None:
    r = promtool("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 1 rule files found" in r.stdout + r.stderr


def test_rules_are_valid() -> None:
    r = promtool("check", "rules", "rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "SlawatchCollectorBlind",
        "SlawatchCollectorDown",
        "SlawatchProjectedShareBelowFull",
        "SlawatchLevel1IncidentOpen",
        "SlawatchClaimPointsAtRisk",
        "SlawatchAlertOutboxParked",
    } <= names
    assert f"SUCCESS: {len(names)} rules found" in r.stdout + r.stderr


def test_rules_fire_as_their_unit_tests_say() -> None:
    """rules_test.yml: each alert fires on its condition (after its ``for``), with its labels and text."""
    r = promtool("test", "rules", "rules_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr
    tested = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    fired = {t["alertname"] for case in tested["tests"] for t in case["alert_rule_test"] if t["exp_alerts"]}
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    assert fired == {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
