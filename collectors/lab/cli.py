"""``slawatch lab``: a simulated network on this machine that answers real ICMP and SNMP and breaks on command.

Mounted by ``monitor.cli`` as ``app.add_typer(lab_app, name="lab")``; runs alone as
``python -m collectors.lab.cli``. Every command but ``--help`` needs root (nftables, snmpd on UDP ports). The
commands talk to the lab daemon (:mod:`collectors.lab.daemon`) over its control socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from collectors.lab.daemon import (
    LOG,
    PID,
    LabConfig,
    LabNotRunning,
    force_cleanup,
    lab_dir,
    ours_only,
    pid_alive,
    read_pid,
    remove_state_dir,
    request,
)
from collectors.lab.faults import NftError, NftFaults
from collectors.lab.network import (
    DEFAULT_SENTINEL,
    DEFAULT_TABLE,
    SCENARIOS,
    LabInputError,
    check_loopback,
    check_table_name,
    format_duration,
    parse_duration,
    require_loopback,
)

__all__ = ["adopt_problem", "lab_app"]

ROOT_MESSAGE = (
    "needs root: the lab drops packets with nftables (table inet {table}) and runs net-snmp agents (snmpd) "
    "on loopback UDP ports such as 161 and 16100. Run it as root (sudo); the rest of slawatch runs without."
)
DURATION_HELP = "30s, 10m, 2h, 1h30m"
# Without --snmp-limit, at most this many SNMP agents: each is an snmpd (~12 MiB) and, once polled, two IF-MIB
# helpers (~10 MiB each), so a province's 652 SNMP CPEs would take ~21 GiB; the other CPEs' SNMP times out.
DEFAULT_MAX_AGENTS = 100

lab_app = typer.Typer(
    help="The lab: a simulated network on this machine. Every polled address of the inventory (127.0.0.0/8 or "
    "::1 only) answers real pings; CPEs with SNMP settings get a real snmpd. Faults are silent nftables drops "
    "(table inet slawatch_lab, or $SLAWATCH_LAB_TABLE), so polls time out as for dead devices. A background "
    "daemon owns the agents and timed faults; its state is in $SLAWATCH_LAB_DIR (default /run/slawatch-lab). "
    "Needs root.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _table() -> str:
    return os.environ.get("SLAWATCH_LAB_TABLE") or DEFAULT_TABLE


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"slawatch lab: {message}", err=True)
    raise typer.Exit(code)


def _need_root() -> None:
    if os.geteuid() != 0:
        _fail(ROOT_MESSAGE.format(table=_table()), 2)


def _duration(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except LabInputError as exc:
        _fail(f"{option}: {exc}")


def _call(payload: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the running lab; exit with its message on refusal."""
    _need_root()
    directory = lab_dir()
    try:
        answer = request(directory, payload)
    except LabNotRunning:
        if (directory / PID).exists():
            _fail(f"the lab daemon of {directory} is gone; `slawatch lab down` cleans up what it left", 1)
        _fail(f"the lab is not up (no daemon in {directory}); start it with `slawatch lab up --inventory FILE`", 1)
    except OSError as exc:
        _fail(f"the lab daemon in {directory} does not answer ({exc}); `slawatch lab down` cleans up", 1)
    if not answer.get("ok"):
        _fail(str(answer.get("error")), int(answer.get("code", 1)))
    return answer


def adopt_problem(
    status: dict[str, Any], inventory: Path, table: str, sentinels: list[str] | None = None
) -> str | None:
    """Why the running lab (its daemon's ``status`` answer) cannot be adopted for ``inventory``, or None.

    Adoptable: it runs on the same inventory file, with the same number of nodes and addresses as the file
    has now, on the nft table ``table`` (still there), with the ``sentinels`` asked for (None: any), and
    every SNMP agent running but those of CPEs whose power is cut by a fault in progress.
    """
    from monitor.inventory_io import load_inventory

    if not status.get("ok"):
        return f"its daemon answers with an error: {status.get('error')}"
    if Path(str(status.get("inventory"))) != inventory.absolute():
        return f"it runs on another inventory ({status.get('inventory')})"
    inv = load_inventory(inventory)
    addresses = sum(1 for n in inv.nodes() if n.address is not None)
    if (status.get("nodes"), status.get("addresses")) != (len(inv), addresses):
        return (
            f"it runs on an older version of {inventory} ({status.get('nodes')} nodes, "
            f"{status.get('addresses')} addresses; the file has {len(inv)} and {addresses})"
        )
    if status.get("table") != table:
        return f"it uses the nft table inet {status.get('table')}, not {table}"
    try:
        if not NftFaults(table).exists():
            return f"its nft table inet {table} is gone"
    except NftError as exc:
        return f"its nft table inet {table} cannot be read: {exc}"
    if sentinels is not None and sorted(status.get("sentinels") or []) != sorted(sentinels):
        return f"its sentinels are {', '.join(status.get('sentinels') or []) or 'none'}, not {', '.join(sentinels)}"
    unpowered = {f["node"] for f in status.get("faults", []) if f.get("kind") == "power"}
    stopped = [a["node"] for a in status.get("agents", []) if not a.get("running") and a["node"] not in unpowered]
    if stopped:
        return f"SNMP agents not running: {', '.join(stopped[:10])}"
    return None


def _done(answer: dict[str, Any]) -> None:
    typer.echo(answer.get("message", "ok"))


NodeArg = Annotated[str, typer.Argument(help="Node id from the lab inventory.", show_default=False)]
CpeArg = Annotated[str, typer.Argument(help="Id of a CPE that has an SNMP agent in the lab.", show_default=False)]
ForOpt = Annotated[
    str | None,
    typer.Option("--for", help=f"Heal by itself after this long ({DURATION_HELP}); default: until healed."),
]


@lab_app.command()
def up(
    inventory: Annotated[
        Path, typer.Option(help="Inventory file (CSV, YAML or JSON); every address must be loopback.")
    ],
    snmp_limit: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Start SNMP agents for only the first N CPEs with SNMP settings (a light demo). Default: all, "
            f"at most {DEFAULT_MAX_AGENTS} (about 33 MiB each once polled); the other CPEs' SNMP times out.",
        ),
    ] = None,
    sentinel: Annotated[
        list[str] | None,
        typer.Option(
            help="Address the collector pings to check its own view (monitor.live sentinels); `blind` drops "
            f"pings to it. Repeatable. Default {DEFAULT_SENTINEL}."
        ),
    ] = None,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="If a healthy lab is already up on this inventory, keep it as it is (its faults in progress "
            "too) instead of refusing; e.g. after the process that started it was killed.",
        ),
    ] = False,
) -> None:
    """Start the lab daemon: nft table, one snmpd per CPE with SNMP settings, ready for faults.

    Refuses an inventory with any address outside 127.0.0.0/8 and ::1 (naming node, line and field). With
    --adopt, a healthy lab already up on the same inventory is kept (and said so) instead.
    """
    from monitor.errors import InventoryError
    from monitor.inventory_io import load_inventory

    _need_root()
    try:
        table = check_table_name(_table())
        inv = load_inventory(inventory)
        problems = check_loopback(inv, inventory)
        if problems:
            _fail("refusing an inventory outside loopback:\n" + "\n".join(problems))
        sentinels = [require_loopback(a, "--sentinel") for a in (sentinel or [DEFAULT_SENTINEL])]
    except (InventoryError, LabInputError) as exc:
        _fail(str(exc))
    directory = lab_dir()
    try:
        running: dict[str, Any] | None = request(directory, {"cmd": "status"}, timeout_s=10)
    except (LabNotRunning, OSError):
        running = None
    if running is not None:
        where = f"pid {running.get('pid')}, {running.get('inventory')}"
        if not adopt:
            _fail(
                f"the lab is already up ({where}); `slawatch lab up --adopt --inventory {inventory}` keeps it "
                "(faults in progress too) if it runs on that inventory; `slawatch lab down` takes it down first",
                1,
            )
        problem = adopt_problem(running, inventory, table, sentinel)
        if problem is not None:
            _fail(
                f"the lab already up ({where}) cannot be adopted: {problem}. `slawatch lab down` takes it down "
                "(and clears its faults); then run this again",
                1,
            )
        faults = running.get("faults", [])
        typer.echo(
            f"lab already up: adopted (daemon pid {running.get('pid')}, {running.get('addresses')} addresses, "
            f"{sum(1 for a in running.get('agents', []) if a.get('running'))} SNMP agents running, nft table inet "
            f"{table}; {len(faults)} fault{'s' if len(faults) != 1 else ''} in progress kept: "
            f"{', '.join(str(f['node']) for f in faults) or 'none'})"
        )
        return
    if directory.exists():
        if not ours_only(directory):
            _fail(f"{directory} holds files that are not the lab's: set SLAWATCH_LAB_DIR to an empty directory")
        for line in force_cleanup(directory, table):
            typer.echo(f"stale lab cleaned up: {line}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    with_snmp = sum(1 for n in inv.nodes() if n.snmp is not None and n.address is not None)
    if snmp_limit is None and with_snmp > DEFAULT_MAX_AGENTS:
        snmp_limit = DEFAULT_MAX_AGENTS
        typer.echo(
            f"{with_snmp} CPEs have SNMP settings: starting agents for the first {snmp_limit} (--snmp-limit N for "
            "more, about 33 MiB each once polled); the others' SNMP times out"
        )
    LabConfig(str(inventory.absolute()), table, sentinels, snmp_limit).write(directory)
    with open(directory / LOG, "ab") as log:
        starter = subprocess.Popen(
            [sys.executable, "-m", "collectors.lab.daemon", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        starter.wait(60)
    pid = read_pid(directory / PID)
    agents = sum(1 for n in inv.nodes() if n.snmp is not None)
    agents = min(agents, snmp_limit) if snmp_limit is not None else agents
    deadline = time.monotonic() + 20 + 6 * agents + len(inv) / 2000  # loading 100,000 nodes takes seconds
    status: dict[str, Any] | None = None
    shown = 0  # the daemon's progress lines of the log already echoed
    while status is None and time.monotonic() < deadline:
        try:
            status = request(directory, {"cmd": "status"}, timeout_s=10)
        except (LabNotRunning, OSError):
            if starter.returncode != 0 or pid is None or not pid_alive(pid):
                break
            shown = _progress(directory, shown)
            time.sleep(0.2)
    if status is None or not status.get("ok"):
        try:
            tail = (directory / LOG).read_text(errors="replace")[-3000:]
        except OSError:
            tail = ""
        force_cleanup(directory, table)
        remove_state_dir(directory)
        _fail(f"the lab did not come up; daemon log:\n{tail.strip()}", 1)
    started = sum(1 for a in status["agents"] if a["running"])
    typer.echo(
        f"lab up: daemon pid {status['pid']}, {status['addresses']} addresses, {started} SNMP agents running, "
        f"nft table inet {table}, sentinel {', '.join(sentinels)}, state in {directory}"
    )
    for node, error in status["agent_errors"].items():
        typer.echo(f"  agent {node} not running: {error}", err=True)


def _progress(directory: Path, shown: int) -> int:
    """Echo the daemon's new ``progress:`` log lines (long steps of a large lab); returns how many were seen."""
    try:
        lines = [ln for ln in (directory / LOG).read_text(errors="replace").splitlines() if " progress: " in ln]
    except OSError:
        return shown
    for line in lines[shown:]:
        typer.echo("  " + line.split(" progress: ", 1)[1])
    return len(lines)


@lab_app.command()
def down() -> None:
    """Stop the lab: stop every agent and the daemon, delete the nft table, remove the state directory."""
    _need_root()
    directory = lab_dir()
    pid = read_pid(directory / PID)
    try:
        request(directory, {"cmd": "down"}, timeout_s=30)
        deadline = time.monotonic() + 60  # a hundred agents take a while to stop
        while pid and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped = True
    except (LabNotRunning, OSError):
        stopped = False
    leftovers = force_cleanup(directory, _table())
    for line in leftovers:
        typer.echo(f"cleaned up: {line}")
    typer.echo("lab down" if stopped or leftovers else "the lab was not up")


@lab_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the daemon's answer as JSON.")] = False,
) -> None:
    """What the lab is doing: agents and their uplinks, active faults, silenced addresses."""
    s = _call({"cmd": "status"})
    if as_json:
        typer.echo(json.dumps(s, indent=1))
        return
    typer.echo(
        f"lab up (pid {s['pid']}): {s['inventory']}: {s['nodes']} nodes, {s['addresses']} addresses; "
        f"nft table inet {s['table']}; sentinel {', '.join(s['sentinels']) or '-'}"
    )
    typer.echo(f"agents: {len(s['agents'])}")
    for a in s["agents"]:
        oper = {1: "up", 2: "down"}.get(a["uplink_oper"], "?")
        state = f"running pid {a['pid']}" if a["running"] else "stopped"
        typer.echo(f"  {a['node']:<16} {a['endpoint']:<24} {state:<18} uplink ifIndex {a['uplink_if']} {oper}")
    for node, error in s["agent_errors"].items():
        typer.echo(f"  {node:<16} not running: {error}")
    blinded = f"; blind: pings to {', '.join(s['blinded'])} dropped" if s["blinded"] else ""
    typer.echo(f"faults: {len(s['faults'])}, {len(s['silenced'])} addresses silent{blinded}")
    for f in s["faults"]:
        what = f["scenario"] or f["kind"]
        extra = []
        if f["period_s"]:
            extra.append(f"every {format_duration(f['period_s'])}, now {'down' if f['down'] else 'up'}")
        extra.append("until healed" if f["heals_in_s"] is None else f"heals in {format_duration(f['heals_in_s'])}")
        count = f"{f['addresses']} address{'es' if f['addresses'] != 1 else ''}"
        typer.echo(f"  {f['node']:<16} {what:<10} {count:>15}  {', '.join(extra)}")


@lab_app.command()
def fail(node: NodeArg, for_: ForOpt = None) -> None:
    """Silence NODE and every address under it (pings and SNMP time out) until healed or --for ends."""
    _done(_call({"cmd": "fail", "node": node, "for_s": _duration(for_, "--for")}))


@lab_app.command()
def heal(
    node: Annotated[str | None, typer.Argument(help="Node id to heal.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Heal every fault, blind included.")] = False,
) -> None:
    """End the fault on NODE (fail, flap or scenario). A fault on a node above it still silences it."""
    if (node is None) == (not all_):
        _fail("give a NODE or --all (not both)")
    _done(_call({"cmd": "heal", "node": node, "all": all_}))


@lab_app.command()
def flap(
    node: NodeArg,
    period: Annotated[str, typer.Option(help=f"Time down, then the same time up, and so on ({DURATION_HELP}).")],
    for_: ForOpt = None,
) -> None:
    """Make NODE and everything under it go silent and answer again, every --period, until healed."""
    _done(
        _call(
            {"cmd": "flap", "node": node, "period_s": _duration(period, "--period"), "for_s": _duration(for_, "--for")}
        )
    )


@lab_app.command()
def ifdown(cpe: CpeArg) -> None:
    """Set the CPE's uplink ifOperStatus to down(2) in its SNMP agent (it still answers pings)."""
    _done(_call({"cmd": "ifdown", "node": cpe}))


@lab_app.command()
def ifup(cpe: CpeArg) -> None:
    """Set the CPE's uplink ifOperStatus back to up(1)."""
    _done(_call({"cmd": "ifup", "node": cpe}))


@lab_app.command()
def reboot(cpe: CpeArg) -> None:
    """Restart the CPE's snmpd: sysUpTime starts again near 0 and counters reset, as after a real reboot.

    For a reboot that also takes the CPE off the network for a while, use `scenario cpe-power --node CPE --for 1m`.
    """
    _done(_call({"cmd": "reboot", "node": cpe}))


@lab_app.command()
def blind(for_: ForOpt = None) -> None:
    """Blind the collector: drop pings to its sentinel address(es) (`up --sentinel`), as if its own view broke.

    Only ICMP echo requests are dropped, so other local services on a sentinel such as 127.0.0.1 keep working.
    """
    _done(_call({"cmd": "blind", "for_s": _duration(for_, "--for")}))


@lab_app.command()
def unblind() -> None:
    """Let the sentinel address(es) answer pings again."""
    _done(_call({"cmd": "unblind"}))


_SCENARIO_HELP = "; ".join(f"{s.name}: {s.help}" for s in SCENARIOS.values())


_SCENARIO_DOC = (
    f"Run a named fault: {_SCENARIO_HELP}. Without --node the first fitting node of the inventory is hit "
    "(for cpe-power, the first CPE with a running agent). `heal NODE` ends it."
)


@lab_app.command(help=_SCENARIO_DOC)
def scenario(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCENARIOS)}.", show_default=False)],
    node: Annotated[str | None, typer.Option(help="The node to hit (of the scenario's kind).")] = None,
    for_: ForOpt = None,
) -> None:
    if name not in SCENARIOS:
        _fail(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    _done(_call({"cmd": "scenario", "name": name, "node": node, "for_s": _duration(for_, "--for")}))


if __name__ == "__main__":
    lab_app(prog_name="slawatch lab")
