"""Debian's ``prometheus`` scrapes a running slawatch; every PromQL expression of the dashboard and the rules
is evaluated through Prometheus's HTTP API.

slawatch runs as ``slawatch run`` does, in this test's event loop: the API under uvicorn on a free 127.0.0.1
port and the live loop (``LiveService.run``) beside it, on SQLite, over scripted probers (no packet is sent to
the network: every polled node answers). Before it starts, a fibre branch's outage dated three hours ago is
replayed (24 channels: a level-1 incident, unacknowledged, so 11:00 points are at risk and the month loses
points). Prometheus (a private instance on another free loopback port, its own temp config and storage)
scrapes every second and evaluates deploy/prometheus/rules.yml.

Each dashboard expression must return data. Each rule expression must evaluate; the alerts that are
legitimately quiet here (collector down, blind, outbox parked...) return an empty result, and then every
metric they name must exist (the ``up``-style sanity check). Every rule must evaluate with health "ok", and
the level-1 alert must fire. Waits are bounded; Prometheus and the server are stopped whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from api.app import create_app
from monitor.events import NodeState, StateEvent
from monitor.inventory import Inventory, Node, NodeKind
from monitor.live import LiveService, LiveSettings
from monitor.runtime import open_service
from monitor.settings import Settings
from tests.api.test_metrics import ScriptedIcmp, ScriptedSnmp
from tests.deploy.tools import DEPLOY, free_port, tool

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "slawatch.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
WAIT_S = 60.0
VARIABLES = {"$contract": ".*", "${contract}": ".*"}
PROMQL_FUNCTIONS = {
    "sum", "max", "min", "count", "rate", "histogram_quantile", "time", "by", "on", "and", "or", "unless",
    "le", "label_values",
}  # fmt: skip


def network() -> Inventory:
    """T1 / CPE-1 with 6 cameras (up); T2 / B2 (a fibre branch, not polled) / CPE-2 / NVR-2 with 24 channels."""
    return Inventory(
        [
            Node("T1", NodeKind.AREA),
            Node("CPE-1", NodeKind.CPE, parent="T1", address="127.62.1.1"),
            *(
                Node(f"CPE-1.{c}", NodeKind.CAMERA, parent="CPE-1", address=f"127.62.1.{10 + c}", channels=1)
                for c in range(1, 7)
            ),
            Node("T2", NodeKind.AREA),
            Node("B2", NodeKind.BRANCH, parent="T2"),
            Node("CPE-2", NodeKind.CPE, parent="B2", address="127.62.2.1"),
            Node("NVR-2", NodeKind.NVR, parent="CPE-2", address="127.62.2.10", channels=24),
        ]
    )


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel (rows' nested panels included)."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return out


def rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(r.get("alert") or r["record"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown dashboard variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (identifiers that are neither functions, keywords nor labels)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_groupings = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", without_labels)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", without_groupings))
    return {n for n in names if n not in PROMQL_FUNCTIONS and not re.fullmatch(r"\d+[smhd]?", n)}


@dataclass
class Running:
    api: str
    prometheus: str
    client: httpx.AsyncClient
    process: subprocess.Popen[bytes]
    log: Path

    async def query(self, expr: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"{self.prometheus}/api/v1/query", params={"query": expr})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {r.status_code} {body}"
        return list(body["data"]["result"])

    async def until(self, what: str, check: Any) -> Any:
        """Poll ``check()`` (async, truthy when done) every 0.5 s for at most WAIT_S."""
        deadline = asyncio.get_running_loop().time() + WAIT_S
        last: Any = None
        while asyncio.get_running_loop().time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited ({self.process.returncode}): {self.log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.TransportError):
                last = await check()
                if last:
                    return last
            await asyncio.sleep(0.5)
        pytest.fail(f"timed out after {WAIT_S:g} s waiting for {what} (last: {last!r})")


@contextlib.contextmanager
def prometheus(tmp: Path, target: str) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A private Prometheus on a free loopback port scraping ``target`` every second with slawatch's rules."""
    binary = tool("prometheus")
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(RULES)]
    config.pop("alerting", None)  # no Alertmanager here
    (job,) = config["scrape_configs"]
    job["static_configs"][0]["targets"] = [target]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", proc, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@contextlib.asynccontextmanager
async def slawatch(tmp: Path) -> AsyncIterator[str]:
    """``slawatch run`` in this loop: API on a free 127.0.0.1 port and the live loop, on SQLite under ``tmp``."""
    settings = Settings(data_dir=tmp / "data", down_after=1, up_after=1)
    inventory = network()
    async with open_service(settings) as service:
        await service.import_inventory(inventory)
        cut = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
        await service.ingest([("replay:1", StateEvent(at=cut, node="B2", state=NodeState.DOWN))], "replay")
        live = LiveService(
            service,
            LiveSettings(icmp_interval_s=1.0, snmp_interval_s=5.0, suspect_interval_s=1.0, icmp_count=1, tick_s=0.5),
            probers={"icmp": ScriptedIcmp(inventory), "snmp": ScriptedSnmp()},
        )
        app = create_app(settings, service=service)
        app.state.live = live
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws="none", lifespan="on")
        )
        stop = asyncio.Event()
        loop_task = asyncio.create_task(live.run(stop))
        server_task = asyncio.create_task(server.serve())
        try:
            deadline = asyncio.get_running_loop().time() + WAIT_S
            while not server.started:
                assert not server_task.done(), "uvicorn did not start"
                assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start in time"
                await asyncio.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
            stop.set()
            await asyncio.wait_for(asyncio.gather(server_task, loop_task, return_exceptions=True), WAIT_S)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    tool("prometheus")
    async with slawatch(tmp_path) as target, httpx.AsyncClient(timeout=10.0) as client:
        with prometheus(tmp_path, target) as (url, process, log):
            yield Running(f"http://{target}", url, client, process, log)


async def test_dashboard_and_rules_evaluate_against_a_running_slawatch(running: Running) -> None:
    for _ in range(3):  # requests for the HTTP panels
        assert (await running.client.get(f"{running.api}/healthz")).status_code == 200

    async def scraped() -> bool:
        r = await running.client.get(f"{running.prometheus}/api/v1/targets")
        targets = r.json()["data"]["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)

    await running.until("the first successful scrape", scraped)

    async def samples() -> bool:  # rate() needs at least two samples in its window
        found = await running.query("count_over_time(slawatch_build_info[1m])")
        return bool(found) and float(found[0]["value"][1]) >= 4

    await running.until("four scrapes", samples)

    # every dashboard expression returns data
    empty: list[str] = []
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    for title, expr in exprs:
        if not await running.query(substitute(expr)):
            empty.append(f"{title}: {expr}")
    assert not empty, "dashboard expressions without data:\n" + "\n".join(empty)
    # the template variable's query: its metric exists and carries the label
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable.get("definition", ""))
        if found:
            series = await running.query(found[1])
            assert series and all(found[2] in s["metric"] for s in series), variable["name"]

    # figures as the scenario makes them: a level-1 incident (24 channels) open for 3 h, unacknowledged
    (level1,) = await running.query('slawatch_open_incidents{level="1"}')
    assert float(level1["value"][1]) == 1
    (offline,) = await running.query('sum(slawatch_channels{state="offline"})')
    assert float(offline["value"][1]) == 24
    (at_risk,) = await running.query("sum(slawatch_claim_points_at_risk)")
    assert float(at_risk["value"][1]) == 48  # 24 channels x 2 points at the next 11:00
    (collector,) = await running.query("slawatch_collector_up")
    assert float(collector["value"][1]) == 1

    # every rule expression evaluates; a quiet alert's metrics exist
    quiet: list[str] = []
    for name, expr in rule_exprs():
        if await running.query(expr):
            continue
        quiet.append(name)
        for metric in metric_names(expr):
            assert await running.query(metric), f"{name}: metric {metric} does not exist"
    assert "SlawatchLevel1IncidentOpen" not in quiet
    assert {"SlawatchCollectorDown", "SlawatchCollectorBlind", "SlawatchAlertOutboxParked"} <= set(quiet)

    async def evaluated() -> list[dict[str, Any]]:
        r = await running.client.get(f"{running.prometheus}/api/v1/rules")
        rules = [rule for group in r.json()["data"]["groups"] for rule in group["rules"]]
        done = rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)
        return rules if done else []

    rules = await running.until("every rule evaluated", evaluated)
    assert {r["name"] for r in rules} == {name for name, _ in rule_exprs()}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

    async def firing() -> bool:
        r = await running.client.get(f"{running.prometheus}/api/v1/alerts")
        alerts = r.json()["data"]["alerts"]
        return any(a["labels"]["alertname"] == "SlawatchLevel1IncidentOpen" and a["state"] == "firing" for a in alerts)

    await running.until("the level-1 alert firing", firing)


def test_expressions_name_only_slawatch_metrics_and_exporters() -> None:
    """No stale metric names: every name the dashboard and the rules read is one slawatch (or its process and
    HTTP instrumentation, or Prometheus itself) exports."""
    known = re.compile(r"(slawatch_[a-z_]+|http_requests_total|up)")
    for where, expr in [*dashboard_exprs(), *rule_exprs()]:
        for name in metric_names(substitute(expr)):
            assert known.fullmatch(name), f"{where}: {name}"


def test_provisioning_points_at_the_dashboard() -> None:
    dashboards = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "slawatch.yml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].endswith("/slawatch")
    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://127.0.0.1:")
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    titles = " / ".join(p["title"] for p in dash["panels"])
    for needed in ("by area", "Online ratio through the month", "incidents by level", "at risk", "Collector"):
        assert needed in titles, needed
