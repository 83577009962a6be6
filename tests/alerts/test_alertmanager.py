"""The Alertmanager sink against Debian's ``prometheus-alertmanager``, started by the test on a free loopback port
with a temporary configuration and storage (clustering off): the incident appears in its API with the labels
a NOC routes on, and resolves when the incident ends."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from monitor.alerts.alertmanager import refresh
from monitor.alerts.delivery import Delivery
from monitor.alerts.outbox import open_states
from monitor.alerts.rules import rules_from_mapping
from monitor.events import format_time, parse_event
from monitor.settings import AlertSettings
from monitor.storage import Database
from tests.alerts.builders import alerting_service
from tests.alerts.mqtt_helpers import broker_up, free_port

BINARY = "prometheus-alertmanager"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which(BINARY)
    if binary is None:
        message = f"{BINARY} is not installed (apt-get install -y prometheus-alertmanager)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    conf = tmp_path / "alertmanager.yml"
    conf.write_text("route:\n  receiver: noc\nreceivers:\n  - name: noc\n", encoding="utf-8")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={conf}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if broker_up("127.0.0.1", port):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"{BINARY} exited with {proc.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{BINARY} did not listen on 127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def get_alerts(url: str, incident: str) -> list[dict[str, Any]]:
    query = quote(f'incident="{incident}"')
    with urllib.request.urlopen(f"{url}/api/v2/alerts?filter={query}", timeout=5) as response:
        return list(json.load(response))


async def test_incident_appears_in_alertmanager_and_resolves(sqlite_db: Database, alertmanager: str) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    clock = {"now": start}
    rules = rules_from_mapping(
        {
            "default_route": {"always": ["am"]},
            "targets": {"am": {"kind": "alertmanager", "url": alertmanager}},
        }
    )
    service, hook = await alerting_service(sqlite_db, rules, lambda: clock["now"])
    delivery = Delivery(sqlite_db, rules, AlertSettings(), hook=hook, clock=lambda: clock["now"])
    incident = f"CPE-0003@{format_time(start)}"
    down = parse_event({"type": "state", "at": format_time(start), "node": "CPE-0003", "state": "down"})
    await service.ingest([("test", down)], source="test")
    assert (await delivery.round()).sent == 1

    [alert] = await asyncio.to_thread(get_alerts, alertmanager, incident)
    assert alert["labels"] == {
        "alertname": "SlawatchIncident",
        "level": "3",
        "area": "T01",
        "scope": "CPE-0003",
        "contract": "default",
        "incident": incident,
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["channels_offline"] == "9"
    assert alert["annotations"]["summary"] == "三级故障 CPE-0003 / Level 3 incident at CPE-0003"
    assert datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00")) == start
    # Open: valid for 4 refresh periods (4 min), and re-posted every period while it stays open.
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=3) < ends - datetime.now(UTC) <= timedelta(minutes=4)
    await asyncio.sleep(1.1)
    states = await open_states(sqlite_db)
    assert await refresh(rules.targets["am"], rules, states, timedelta(minutes=1)) == 1
    [again] = await asyncio.to_thread(get_alerts, alertmanager, incident)
    assert again["updatedAt"] > alert["updatedAt"] and again["endsAt"] > alert["endsAt"]

    end = start + timedelta(minutes=5)
    clock["now"] = end + timedelta(seconds=30)
    up = parse_event({"type": "state", "at": format_time(end), "node": "CPE-0003", "state": "up"})
    await service.ingest([("test", up)], source="test")
    assert (await delivery.round()).sent == 1
    await delivery.close()
    # Resolved (endsAt in the past): no longer among the alerts Alertmanager reports.
    assert await asyncio.to_thread(get_alerts, alertmanager, incident) == []
