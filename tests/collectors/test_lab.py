"""The lab (``slawatch lab``) for real: its daemon, snmpd agents and nftables drops, seen by real pings and GETs.

One lab is brought up per module on ``tests/data/inventory/small.csv`` (CPE-0001 has SNMP v2c on
127.10.0.1:16100) with its own state directory and nft table name, and is always taken down in the fixture's
teardown, even when a test fails. Liveness is checked with :class:`collectors.icmp.Pinger` and ``snmpget``.
Packets go only to 127.0.0.0/8.

Tests that need root (nftables, raw sockets, snmpd) skip without it, unless ``CI=true``, where they fail::

    sudo .venv/bin/pytest tests/collectors/test_lab.py

The pure parts (addresses behind a node, nft text, durations, scenario picks, refusals) always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from typer.testing import CliRunner, Result

from collectors.errors import PermissionDenied
from collectors.icmp import Pinger
from collectors.lab.cli import lab_app
from collectors.lab.daemon import force_cleanup, pid_alive
from collectors.lab.network import (
    SCENARIOS,
    LabInputError,
    addresses_behind,
    check_loopback,
    nft_ruleset,
    nft_set_script,
    parse_duration,
    pick_node,
)
from monitor.inventory_io import load_inventory, parse_inventory_document

pytestmark = [pytest.mark.net]

REPO = Path(__file__).resolve().parents[2]
SMALL = REPO / "tests" / "data" / "inventory" / "small.csv"
IN_CI = os.environ.get("CI") == "true"
HOW_TO_RUN = "run as root: sudo .venv/bin/pytest tests/collectors/test_lab.py"
SENTINEL = "127.0.0.2"  # not the default 127.0.0.1: pings to localhost keep working during the tests
CPE1 = ["127.10.0.1", "127.20.0.1", "127.20.0.2"]  # CPE-0001 and its two cameras
OTHERS = ["127.10.0.2", "127.20.0.3", "127.20.0.4", "127.20.0.5", "127.10.0.3", "127.20.0.6", "127.30.0.1"]
SNMP_TARGET = "127.10.0.1:16100"
COMMUNITY = "slw-CPE-0001"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_OPER_UPLINK = "1.3.6.1.2.1.2.2.1.8.2"
IF_NAME_UPLINK = "1.3.6.1.2.1.31.1.1.1.1.2"


def unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(f"{reason}; {HOW_TO_RUN}")


# -- pure parts ---------------------------------------------------------------------------------------------


def test_addresses_behind_a_node_are_its_own_and_its_descendants() -> None:
    inv = load_inventory(SMALL)
    assert addresses_behind(inv, "CPE-0001") == CPE1
    assert addresses_behind(inv, "T01-B2") == ["127.10.0.3", "127.20.0.6", "127.30.0.1"]
    assert addresses_behind(inv, "CAM-0001-2") == ["127.20.0.2"]
    assert len(addresses_behind(inv, "T01")) == 10
    with pytest.raises(LabInputError, match="NOPE"):
        addresses_behind(inv, "NOPE")


def test_scenarios_pick_deterministically() -> None:
    inv = load_inventory(SMALL)
    picks = {name: pick_node(inv, s, with_agent={"CPE-0001"}) for name, s in SCENARIOS.items()}
    assert picks == {
        "trunk-cut": "T01",
        "branch-cut": "T01-B1",
        "cpe-power": "CPE-0001",
        "camera": "CAM-0001-1",
        "nvr": "NVR-0003",
    }
    assert pick_node(inv, SCENARIOS["cpe-power"], with_agent={"CPE-0003"}) == "CPE-0003"


def test_durations() -> None:
    assert [parse_duration(t) for t in ("30s", "10m", "2h", "1h30m", "1.5s", "250ms", "90")] == [
        30, 600, 7200, 5400, 1.5, 0.25, 90
    ]
    for bad in ("", "10x", "0s", "-1s", "s", "10m5", "5 m"):
        with pytest.raises(LabInputError):
            parse_duration(bad)


def test_nft_text_drops_echo_and_udp_to_loopback_sets_only() -> None:
    text = nft_ruleset("slawatch_lab_x", ["127.20.0.2", "127.10.0.1", "::1"])
    assert "table inet slawatch_lab_x {" in text and "delete table inet slawatch_lab_x" in text
    assert "elements = { 127.10.0.1, 127.20.0.2 }" in text and "elements = { ::1 }" in text
    assert 'iifname "lo" ip daddr @failed icmp type echo-request drop' in text
    assert 'iifname "lo" ip daddr @failed meta l4proto udp drop' in text
    assert 'iifname "lo" ip daddr @blind icmp type echo-request drop' in text
    assert "@blind meta l4proto udp" not in text  # blind drops pings only
    script = nft_set_script("slawatch_lab_x", ["127.10.0.1"], ["127.0.0.1"])
    assert script.splitlines() == [
        "flush set inet slawatch_lab_x failed",
        "add element inet slawatch_lab_x failed { 127.10.0.1 }",
        "flush set inet slawatch_lab_x failed6",
        "flush set inet slawatch_lab_x blind",
        "add element inet slawatch_lab_x blind { 127.0.0.1 }",
        "flush set inet slawatch_lab_x blind6",
    ]
    with pytest.raises(LabInputError, match="not a loopback"):
        nft_set_script("slawatch_lab_x", ["198.51.100.7"])
    with pytest.raises(LabInputError, match="table name"):
        nft_ruleset("bad name; flush ruleset")


def test_check_loopback_names_node_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL.read_text().replace("127.20.0.2,", "198.51.100.7,"))
    assert check_loopback(load_inventory(bad), bad) == [
        f"{bad}:7: node 'CAM-0001-2' field 'address': 198.51.100.7 is not a loopback address "
        "(the lab only touches 127.0.0.0/8 and ::1)"
    ]
    yaml_text = (
        "nodes:\n  - id: A\n    kind: area\n  - id: C1\n    kind: cpe\n    parent: A\n    address: 203.0.113.1\n"
    )
    doc = tmp_path / "inv.yaml"
    doc.write_text(yaml_text)
    inv, _ = parse_inventory_document(yaml_text, "yaml")
    assert check_loopback(inv, doc)[0].startswith(f"{doc}:7: node 'C1' field 'address': 203.0.113.1")
    assert check_loopback(load_inventory(SMALL), SMALL) == []


def test_every_command_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    runner = CliRunner()
    env = {"SLAWATCH_LAB_DIR": str(tmp_path / "lab")}
    for args in (
        ["up", "--inventory", str(SMALL)], ["down"], ["status"], ["fail", "CPE-0001"], ["heal", "CPE-0001"],
        ["flap", "CPE-0001", "--period", "30s"], ["ifdown", "CPE-0001"], ["ifup", "CPE-0001"],
        ["reboot", "CPE-0001"], ["blind"], ["unblind"], ["scenario", "camera"],
    ):  # fmt: skip
        result = runner.invoke(lab_app, args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "needs root" in result.output and "nftables" in result.output and "161" in result.output
        assert runner.invoke(lab_app, [args[0], "--help"], env=env).exit_code == 0
    assert not (tmp_path / "lab").exists()


# -- the real lab -------------------------------------------------------------------------------------------


def need_root_tools() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (nftables, snmpd, raw ICMP sockets)")
    for tool in ("nft", "snmpd", "snmpget"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            unavailable(f"needs the `{tool}` command")


def answering(addresses: list[str]) -> dict[str, bool]:
    """Which addresses answer a real ping (2 echo requests, 0.4 s timeout)."""

    async def go() -> dict[str, bool]:
        pinger = Pinger()
        try:
            await pinger.open()
        except PermissionDenied as exc:
            unavailable(f"cannot open an ICMP socket: {exc}")
        try:
            results = await pinger.ping_many(addresses, count=2, interval=0.05, timeout=0.4)
        finally:
            await pinger.close()
        return {a: r.ok for a, r in results.items()}

    return asyncio.run(go())


def silent(addresses: list[str]) -> bool:
    return not any(answering(addresses).values())


def alive(addresses: list[str]) -> bool:
    return all(answering(addresses).values())


def snmp_get(oid: str) -> str | None:
    """The value of ``oid`` on CPE-0001's agent (snmpget, v2c, 0.5 s, no retry), None on timeout."""
    proc = subprocess.run(
        ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", "-Oqvt", SNMP_TARGET, oid],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "MIBS": ""},
        check=False,
    )
    if proc.returncode != 0:
        assert "Timeout" in proc.stderr, proc.stderr
        return None
    return proc.stdout.strip().strip('"')


@dataclass
class Lab:
    directory: Path
    table: str
    run: Callable[..., Result]

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("status", "--json").stdout)
        return data


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    need_root_tools()
    directory = tmp_path_factory.mktemp("lab") / "state"
    table = f"slawatch_lab_t{secrets.token_hex(4)}"
    env = {"SLAWATCH_LAB_DIR": str(directory), "SLAWATCH_LAB_TABLE": table}
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(lab_app, list(args), env=env)
        assert result.exit_code == code, f"lab {' '.join(args)} -> {result.exit_code}: {result.output}"
        return result

    try:
        run("up", "--inventory", str(SMALL), "--sentinel", SENTINEL)
        yield Lab(directory, table, run)
    finally:
        runner.invoke(lab_app, ["down"], env=env)
        force_cleanup(directory, table)
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, check=False)


@pytest.fixture
def healthy(lab: Lab) -> Iterator[Lab]:
    """The module's lab, with every fault healed and the uplink up again after the test."""
    try:
        yield lab
    finally:
        if (lab.directory / "ctl.sock").exists():
            lab.run("heal", "--all")
            lab.run("ifup", "CPE-0001")


def test_up_starts_daemon_agent_and_table(healthy: Lab) -> None:
    status = healthy.status()
    assert pid_alive(status["pid"])
    assert [(a["node"], a["running"], a["uplink_if"]) for a in status["agents"]] == [("CPE-0001", True, 2)]
    assert status["faults"] == [] and status["silenced"] == [] and status["sentinels"] == [SENTINEL]
    assert subprocess.run(["nft", "list", "table", "inet", healthy.table], capture_output=True).returncode == 0
    assert alive([*CPE1, *OTHERS, SENTINEL])
    assert snmp_get(SYS_NAME) == "CPE-0001"
    assert snmp_get(IF_NAME_UPLINK) == "wan0"  # the inventory's uplink ifIndex 2
    result = healthy.run("up", "--inventory", str(SMALL), code=1)
    assert "already up" in result.output


def test_up_adopt_keeps_a_running_lab_and_its_faults(healthy: Lab, tmp_path: Path) -> None:
    """What a restarted demo does after a crash (kill -9 leaves the lab up): `up --adopt` keeps the running lab
    and the faults in progress instead of refusing; a lab it cannot adopt is refused with what to run."""
    before = healthy.status()
    healthy.run("fail", "CPE-0002")
    result = healthy.run("up", "--adopt", "--inventory", str(SMALL), "--sentinel", SENTINEL)
    assert "lab already up: adopted" in result.output and "1 fault in progress kept: CPE-0002" in result.output
    after = healthy.status()
    assert after["pid"] == before["pid"]  # the same daemon
    assert [(f["node"], f["kind"]) for f in after["faults"]] == [("CPE-0002", "fail")]
    assert silent(["127.10.0.2", "127.20.0.5"])  # the fault in progress is still on the wire
    assert alive(["127.10.0.1", "127.20.0.1"])
    # without --adopt: refused, naming both ways out
    refused = healthy.run("up", "--inventory", str(SMALL), code=1).output
    assert "already up" in refused and "--adopt" in refused and "slawatch lab down" in refused
    # another inventory (or other sentinels): not adopted, and told exactly what to run
    other = tmp_path / "other.csv"
    other.write_text(SMALL.read_text())
    refused = healthy.run("up", "--adopt", "--inventory", str(other), code=1).output
    assert "cannot be adopted: it runs on another inventory" in refused and "`slawatch lab down`" in refused
    refused = healthy.run("up", "--adopt", "--inventory", str(SMALL), "--sentinel", "127.0.0.9", code=1).output
    assert "its sentinels are 127.0.0.2, not 127.0.0.9" in refused
    assert healthy.status()["pid"] == before["pid"] and healthy.status()["faults"] != []


def test_fail_silences_a_cpe_and_its_cameras_until_healed(healthy: Lab) -> None:
    assert "3 addresses silent" in healthy.run("fail", "CPE-0001").output
    state = answering([*CPE1, *OTHERS])
    assert [a for a, ok in state.items() if not ok] == CPE1
    assert snmp_get(SYS_UPTIME) is None  # UDP to the CPE is dropped too
    assert sorted(healthy.status()["silenced"]) == sorted(CPE1)
    healthy.run("heal", "CPE-0001")
    assert alive([*CPE1, *OTHERS])
    assert snmp_get(SYS_NAME) == "CPE-0001"


def test_fail_for_heals_by_itself(healthy: Lab) -> None:
    start = time.monotonic()
    healthy.run("fail", "CPE-0002", "--for", "1s")
    assert silent(["127.10.0.2", "127.20.0.5"])
    while not alive(["127.10.0.2"]):
        assert time.monotonic() - start < 5, "fail --for 1s did not heal within 5 s"
    assert time.monotonic() - start >= 1.0
    assert healthy.status()["faults"] == []


def test_flap_toggles_until_healed(healthy: Lab) -> None:
    healthy.run("flap", "CPE-0003", "--period", "1s")
    seen: list[bool] = []
    deadline = time.monotonic() + 3.6
    while time.monotonic() < deadline:
        ok = alive(["127.10.0.3"])
        if not seen or seen[-1] != ok:
            seen.append(ok)
        time.sleep(0.1)
    assert seen[:3] == [False, True, False], seen
    assert alive(["127.10.0.1"])  # others unaffected
    healthy.run("heal", "CPE-0003")
    assert alive(["127.10.0.3", "127.20.0.6", "127.30.0.1"])


def test_ifdown_is_seen_over_snmp_and_ping_still_answers(healthy: Lab) -> None:
    assert snmp_get(IF_OPER_UPLINK) == "1"
    healthy.run("ifdown", "CPE-0001")
    assert snmp_get(IF_OPER_UPLINK) == "2"
    assert alive(["127.10.0.1"])
    healthy.run("ifup", "CPE-0001")
    assert snmp_get(IF_OPER_UPLINK) == "1"


def test_reboot_restarts_sysuptime(healthy: Lab) -> None:
    before = snmp_get(SYS_UPTIME)
    assert before is not None
    if int(before) < 150:
        time.sleep((150 - int(before)) / 100 + 0.1)
        before = snmp_get(SYS_UPTIME)
        assert before is not None
    healthy.run("reboot", "CPE-0001")
    after = snmp_get(SYS_UPTIME)
    assert after is not None and int(after) < 100 < int(before)


def udp_round_trip(address: str) -> bool:
    """Whether a datagram sent to a socket bound on ``address`` arrives (local UDP services still work)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind((address, 0))
        rx.settimeout(0.5)
        tx.sendto(b"lab", rx.getsockname())
        try:
            return rx.recv(16) == b"lab"
        except TimeoutError:
            return False


def test_blind_drops_pings_to_the_sentinel_only(healthy: Lab) -> None:
    healthy.run("blind")
    assert silent([SENTINEL])
    assert alive([*CPE1, *OTHERS])
    assert udp_round_trip(SENTINEL)  # only echo requests are dropped
    status = healthy.status()
    assert status["blinded"] == [SENTINEL] and status["silenced"] == []
    healthy.run("unblind")
    assert alive([SENTINEL])


def test_scenarios(healthy: Lab) -> None:
    assert "T01: 10 addresses silent" in healthy.run("scenario", "trunk-cut").output
    assert silent([*CPE1, *OTHERS]) and alive([SENTINEL])
    healthy.run("heal", "T01")
    healthy.run("scenario", "camera")
    assert answering(CPE1) == {"127.10.0.1": True, "127.20.0.1": False, "127.20.0.2": True}
    healthy.run("heal", "CAM-0001-1")
    assert "is a cpe" in healthy.run("scenario", "branch-cut", "--node", "CPE-0001", code=2).output
    # a power cut: silent, agent down; back after --for with sysUpTime from 0
    time.sleep(1.2)
    healthy.run("scenario", "cpe-power", "--for", "2s")
    assert [a["running"] for a in healthy.status()["agents"]] == [False]
    assert silent(CPE1) and snmp_get(SYS_UPTIME) is None
    deadline = time.monotonic() + 6
    while not alive(["127.10.0.1"]):
        assert time.monotonic() < deadline, "cpe-power --for 2s did not heal"
    uptime = snmp_get(SYS_UPTIME)
    assert uptime is not None and int(uptime) < 100


def test_bad_requests_exit_2(healthy: Lab) -> None:
    assert "not in the lab inventory" in healthy.run("fail", "NOPE", code=2).output
    assert "no SNMP agent" in healthy.run("ifdown", "CPE-0002", code=2).output
    assert "not a duration" in healthy.run("fail", "CPE-0001", "--for", "10x", code=2).output
    healthy.run("flap", "CPE-0001", code=2)  # --period is required
    assert "unknown scenario" in healthy.run("scenario", "meteor", code=2).output
    assert healthy.status()["faults"] == []


def test_refuses_an_inventory_outside_loopback(tmp_path: Path) -> None:
    need_root_tools()
    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL.read_text().replace("127.10.0.2,", "198.51.100.7,"))
    env = {"SLAWATCH_LAB_DIR": str(tmp_path / "lab"), "SLAWATCH_LAB_TABLE": f"slawatch_lab_t{secrets.token_hex(4)}"}
    result = CliRunner().invoke(lab_app, ["up", "--inventory", str(bad)], env=env)
    assert result.exit_code == 2
    assert f"{bad}:8: node 'CPE-0002' field 'address': 198.51.100.7 is not a loopback address" in result.output
    assert not (tmp_path / "lab").exists()
    table = env["SLAWATCH_LAB_TABLE"]
    assert subprocess.run(["nft", "list", "table", "inet", table], capture_output=True).returncode != 0


def test_down_removes_everything(lab: Lab) -> None:
    """Last: takes the module's lab down and checks that nothing it made is left."""
    status = lab.status()
    lab.run("fail", "CPE-0001")
    pids = [status["pid"], *(a["pid"] for a in status["agents"])]
    assert all(pid_alive(p) for p in pids)
    assert lab.run("down").output.strip() == "lab down"
    assert not any(pid_alive(p) for p in pids)
    assert subprocess.run(["nft", "list", "table", "inet", lab.table], capture_output=True).returncode != 0
    assert not lab.directory.exists()
    assert alive([*CPE1, *OTHERS, SENTINEL])
    assert snmp_get(SYS_UPTIME) is None  # no agent any more: nothing listens
    assert "not up" in lab.run("status", code=1).output
    assert lab.run("down").output.strip() == "the lab was not up"


def test_progress_lines_of_the_daemon_log_are_echoed_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lab up` shows the daemon's long steps (a province's inventory, a hundred agents) as they happen."""
    from collectors.lab.cli import _progress
    from collectors.lab.daemon import LOG

    log = tmp_path / LOG
    log.write_text("t INFO progress: inventory loaded: 109070 nodes in 3.9 s\nt INFO serving\n")
    assert _progress(tmp_path, 0) == 1
    with log.open("a") as f:
        f.write("t INFO progress: SNMP agents 20/100 (0 s)\n")
    assert _progress(tmp_path, 1) == 2
    assert capsys.readouterr().out.splitlines() == [
        "  inventory loaded: 109070 nodes in 3.9 s",
        "  SNMP agents 20/100 (0 s)",
    ]
    assert _progress(tmp_path / "gone", 2) == 2


def test_agents_are_bounded_by_default() -> None:
    """Without --snmp-limit, a province's 652 SNMP CPEs get at most DEFAULT_MAX_AGENTS agents (each ~33 MiB)."""
    from collectors.lab.cli import DEFAULT_MAX_AGENTS

    assert 0 < DEFAULT_MAX_AGENTS <= 200
