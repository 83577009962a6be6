"""The ``slawatch`` command: an administrator's tool over the same service the API uses.

Every command builds its settings, database and service here (nothing at import time), runs, and closes.
Bad input exits with status 2 and one message naming file, line and field; nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from collectors.lab.cli import lab_app
from monitor.alerts.cli import alerts_app
from monitor.errors import SlawatchError
from monitor.events import format_time, parse_time, read_jsonl
from monitor.logs import setup_logging
from monitor.roles import ROLES
from monitor.settings import Settings
from monitor.tokens import NAME_RE, parse_expiry

T = TypeVar("T")

app = typer.Typer(
    help="slawatch: SLA monitor for leased data circuits. Collects, decides, accounts and reports the monthly "
    "assessment a carrier is paid on. Settings come from SLAWATCH_* environment variables "
    "(SLAWATCH_DATABASE_URL, SLAWATCH_DATA_DIR, ...).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Import, validate, export the network inventory; write the sample network.")
db_app = typer.Typer(help="Database schema (Alembic migrations).")
token_app = typer.Typer(help="API tokens (stored hashed; the secret is shown once).")
contract_app = typer.Typer(help="Contracts: which subtrees a customer assesses, under which policy.")
app.add_typer(inventory_app, name="inventory")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(contract_app, name="contract")
app.add_typer(alerts_app, name="alerts")
app.add_typer(
    lab_app,
    name="lab",
    help="The lab: a simulated network on loopback whose devices answer real ICMP and "
    "SNMP, and break on command (needs root).",
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"slawatch: {message}", err=True)
    return typer.Exit(code=2)


def _run(main: Callable[[Any], Awaitable[T]]) -> T:
    """Open the database (upgrading it), build the service, run ``main(service)``, close."""
    from monitor.runtime import open_service

    settings = Settings()
    setup_logging(settings.log_level)

    async def go() -> T:
        async with open_service(settings) as service:
            return await main(service)

    try:
        return asyncio.run(go())
    except SlawatchError as exc:
        raise _fail(str(exc)) from None


# ---------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration (also done on every start)."""

    async def main(service: Any) -> str:
        rev: str | None = await service.db.current_revision()
        return rev or "none"

    rev = _run(main)
    typer.echo(f"database at revision {rev}")


# ---------------------------------------------------------------------- inventory
@inventory_app.command("validate")
def inventory_validate(file: Annotated[Path, typer.Argument(help="CSV, YAML or JSON inventory")]) -> None:
    """Validate an inventory file whole; print a summary or every problem with file, line and field."""
    from monitor.contracts import contract_from_mapping, validate_contracts
    from monitor.inventory_io import load_inventory_document

    try:
        inv, raw = load_inventory_document(file)
        contracts = [contract_from_mapping(c, f"{file}:{c.get('__line__', 0)}", file.parent) for c in raw]
        validate_contracts(contracts, inv)
    except SlawatchError as exc:
        raise _fail(str(exc)) from None
    cpes = sum(1 for n in inv.nodes() if n.kind == "cpe")
    typer.echo(
        f"{file}: valid: {len(inv)} nodes, {cpes} circuits, {len(inv.channels)} channels, "
        f"{len(contracts) or 'no'} contracts"
    )


@inventory_app.command("import")
def inventory_import(file: Annotated[Path, typer.Argument(help="CSV, YAML or JSON inventory")]) -> None:
    """Validate whole, then write in one transaction; a re-import updates in place and reports what changed."""
    from monitor.contracts import contract_from_mapping
    from monitor.inventory_io import load_inventory_document

    try:
        inv, raw = load_inventory_document(file)
        contracts = [contract_from_mapping(c, f"{file}:{c.get('__line__', 0)}", file.parent) for c in raw]
    except SlawatchError as exc:
        raise _fail(str(exc)) from None

    async def main(service: Any) -> Any:
        return await service.import_inventory(inv, contracts)

    diff = _run(main)
    typer.echo(f"imported {file}: {diff.summary()}")
    for label, ids in (("added", diff.added), ("changed", diff.changed), ("removed", diff.removed)):
        if ids:
            shown = ", ".join(ids[:20]) + (f" ... (+{len(ids) - 20})" if len(ids) > 20 else "")
            typer.echo(f"  {label}: {shown}")


@inventory_app.command("export")
def inventory_export(
    fmt: Annotated[str, typer.Option("--format", help="csv, yaml or json")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    secrets: Annotated[bool, typer.Option(help="include SNMP communities and keys")] = False,
) -> None:
    """Write the stored inventory (SNMP secrets left out unless --secrets)."""
    from monitor.inventory_io import dump_inventory

    if fmt not in ("csv", "yaml", "json"):
        raise _fail(f"--format {fmt!r} is not csv, yaml or json")

    async def main(service: Any) -> Any:
        return await service.inventory()

    text = dump_inventory(_run(main), fmt, include_secrets=secrets)  # type: ignore[arg-type]
    _write(text, output)


@inventory_app.command("sample")
def inventory_sample(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, yaml or json")] = "csv",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same network")] = 2026,
    scale: Annotated[
        int, typer.Option(help="K counties side by side (33: ~100,000 channels and polled nodes); 1..60")
    ] = 1,
) -> None:
    """Write the sample network modelled on the contract: 593 circuits, ~3,000 channels, loopback addresses
    (times --scale)."""
    from monitor.inventory_io import dump_inventory
    from monitor.sample import sample_inventory

    if fmt not in ("csv", "yaml", "json"):
        raise _fail(f"--format {fmt!r} is not csv, yaml or json")
    try:
        inventory = sample_inventory(seed, scale)
    except ValueError as exc:
        raise _fail(f"--scale: {exc}") from None
    _write(dump_inventory(inventory, fmt, include_secrets=True), output)  # type: ignore[arg-type]


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


# ---------------------------------------------------------------------- contracts
@contract_app.command("import")
def contract_import(file: Annotated[Path, typer.Argument(help="YAML file with a 'contracts:' list")]) -> None:
    """Declare the contracts (replacing the stored set); scopes must be nodes of the stored inventory."""
    from monitor.contracts import load_contracts

    try:
        contracts = load_contracts(file)
    except SlawatchError as exc:
        raise _fail(str(exc)) from None

    async def main(service: Any) -> None:
        await service.save_contracts(contracts)

    _run(main)
    typer.echo(f"imported {len(contracts)} contracts: {', '.join(c.id for c in contracts)}")


@contract_app.command("list")
def contract_list() -> None:
    """List the contracts with their policy name, hash and time zone."""

    async def main(service: Any) -> Any:
        return await service.contracts()

    for c in _run(main):
        scopes = "whole network" if c.scopes is None else ", ".join(c.scopes)
        typer.echo(f"{c.id}\t{c.policy.name}\t{c.policy.hash[:12]}\t{c.policy.timezone}\t{scopes}")


# ---------------------------------------------------------------------- events and reports
class _ReportGroup(TyperGroup):
    """``slawatch report MONTH ...`` runs ``report show``: anything that is not a subcommand name (or --help)
    goes to it, so that ``report 2026-10 --format html -o f.html`` works beside ``report versions 2026-10``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own (vendored) click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=_ReportGroup,
    no_args_is_help=True,
    help="The monthly assessment. `slawatch report MONTH` computes it (nothing is stored; the same as "
    "`report show MONTH`); `--issue` issues it as a new version; `report versions MONTH` lists the issued "
    "versions; `report sign MONTH VERSION --by NAME` signs one, which closes the month.",
)
app.add_typer(report_app, name="report")


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines event files, each in time order")],
) -> None:
    """Ingest event files through the engine the live service uses (identical events are one event).

    Every file is validated whole against the inventory before anything is stored.
    """

    async def main(service: Any) -> list[tuple[Path, Any]]:
        tz = await service.event_timezone()
        located = [(f, read_jsonl(f, tz)) for f in files]
        inventory = await service.inventory()
        from monitor.service import check_events

        for _f, events in located:
            check_events(events, inventory)
        results = []
        for f, events in located:
            typer.echo(f"replaying {f}: {len(events)} events ...", err=True)
            results.append((f, await service.ingest(events, source=f"replay:{f.name}")))
        return results

    for f, result in _run(main):
        typer.echo(
            f"{f}: {result.received} events, {result.stored} stored, {result.duplicates} already known, "
            f"{result.confirmed} state changes confirmed from polls"
        )
        for where, etype, reason in result.unmatched[:20]:
            typer.echo(f"  note: {where}: {etype} stored but applied to nothing: {reason}", err=True)
        if len(result.unmatched) > 20:
            typer.echo(f"  note: ... and {len(result.unmatched) - 20} more events applied to nothing", err=True)
        if result.not_applied:  # SPEC R7: never dropped silently
            typer.echo(
                f"  warning: {len(result.not_applied)} polls not applied (replay files in time order: an earlier "
                "file after a later one cannot confirm what its polls would have)",
                err=True,
            )
        for where, reason in result.not_applied[:20]:
            typer.echo(f"  not applied: {where}: {reason}", err=True)
        if len(result.not_applied) > 20:
            typer.echo(f"  not applied: ... and {len(result.not_applied) - 20} more polls", err=True)


events_app = typer.Typer(help="The stored event stream (the source of truth every report is computed from).")
app.add_typer(events_app, name="events")


@events_app.command("export")
def events_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON Lines file to write (default: standard output)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="only events known at or before this RFC 3339 time")
    ] = None,
) -> None:
    """Write the stored events as JSON Lines in processing order, each with the time it became known
    (``known_at``): ``slawatch replay`` of the file into a fresh database gives the same reports."""

    async def main(service: Any) -> list[Any]:
        when = None
        if until is not None:
            tz = await service.event_timezone()
            when = parse_time(until, tz, "--until")
        events: list[Any] = await service.repo.load_events(until_known=when)
        return events

    events = _run(main)
    # known_at always written, so a replay of the file needs no default
    lines = [
        json.dumps(e.to_json() | {"known_at": format_time(e.known)}, ensure_ascii=False, separators=(",", ":"))
        for e in events
    ]
    text = "".join(line + "\n" for line in lines)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{output}: {len(lines)} events", err=True)


def _cli_user() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid
        return "cli"


ContractOption = Annotated[str | None, typer.Option(help="contract id (needed when there are several)")]


@report_app.command("show")
def report(
    month: Annotated[str, typer.Argument(help="YYYY-MM in the contract's time zone")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 time; default now")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json, csv (one text), html, zip (one CSV per table) or pdf")
    ] = "json",
    contract: ContractOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    issue: Annotated[
        bool, typer.Option("--issue", help="issue it as a new version (stored; an assessor's act), and print it")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="why this version is issued (required with --issue once the month is closed)")
    ] = None,
    by: Annotated[str | None, typer.Option(help="who issues it (with --issue; default cli:<user>)")] = None,
) -> None:
    """The monthly assessment: online rate, incidents, deductions, score, share paid and amount.

    Computing it stores nothing; the current month gives a projection. Once a version of the month is signed
    (closed), JSON shows the signed version beside a recomputation and what changed since the signature, and
    CSV/HTML show the signed version. With --issue the report is issued as a new version (as of --as-of,
    default now) and that version is printed; a closed month needs --reason. zip (one CSV per table, UTF-8 with
    BOM) and pdf (the page to sign) are files: give -o FILE, or redirect stdout.
    """
    binary = fmt in ("zip", "pdf")
    if fmt not in ("json", "csv", "html", "zip", "pdf"):
        raise _fail(f"--format {fmt!r} is not json, csv, html, zip or pdf")
    if not issue and (reason is not None or by is not None):
        raise _fail("--reason and --by go with --issue")
    if binary and output is None and sys.stdout.isatty():
        raise _fail(f"--format {fmt} writes a binary file: give -o FILE (or redirect the output)")

    async def main(service: Any) -> str | bytes:
        from monitor.report import render_body, render_file

        c = await service.contract(contract)
        when = parse_time(as_of, c.policy.zone, "as_of") if as_of else None
        if not issue:
            result = await service.month_report(month, as_of=when, contract_id=c.id)
            if binary:  # what is paid: the signed version once the month is closed, else the computation
                body = result.signed.body if result.signed is not None else result.computed.body
                return bytes(render_file(body, fmt, claim_hour=c.policy.claim_hour))  # type: ignore[arg-type]
            return str(result.render(fmt))
        stored = await service.issue_report(month, by=by or _cli_user(), as_of=when, reason=reason, contract_id=c.id)
        typer.echo(f"issued version {stored.version} of {stored.month} (contract {c.id})", err=True)
        if binary:
            return bytes(render_file(stored.body, fmt, claim_hour=c.policy.claim_hour))  # type: ignore[arg-type]
        if fmt == "json":
            return f"{stored.content}\n"
        return render_body(stored.body, fmt, claim_hour=c.policy.claim_hour)  # type: ignore[arg-type]

    out = _run(main)
    if isinstance(out, str):
        _write(out, output)
    elif output is None:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    else:
        output.write_bytes(out)
        typer.echo(f"wrote {output}", err=True)


@report_app.command("versions")
def report_versions(
    month: Annotated[str, typer.Argument(help="YYYY-MM in the contract's time zone")],
    contract: ContractOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON, as GET .../versions gives")] = False,
) -> None:
    """List the issued versions of a month: as of, when and by whom issued, policy hash, reason, signature.

    The signed version (marked SIGNED) is what is paid; a month with one is closed.
    """
    import json

    from monitor.report_versions import version_json

    async def main(service: Any) -> tuple[Any, list[Any]]:
        c = await service.contract(contract)
        return c, await service.report_versions(month, contract_id=c.id)

    c, versions = _run(main)
    rows = [version_json(v, c.policy.zone) for v in versions]
    if as_json:
        typer.echo(json.dumps({"contract": c.id, "month": month, "versions": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo(f"no versions of {month} issued (contract {c.id})")
        return
    for v in rows:
        if v["signed"]:
            state = f"SIGNED by {v['signed_by']} at {v['signed_at']}"
        elif v["superseded_by"] is not None:
            state = f"signed by {v['signed_by']} at {v['signed_at']}, superseded by v{v['superseded_by']}"
        else:
            state = "not signed"
        reason = f"\treason: {v['reason']}" if v["reason"] else ""
        typer.echo(
            f"v{v['version']}\tas of {v['as_of']}\tissued {v['issued_at']} by {v['issued_by'] or '?'}"
            f"\tpolicy {v['policy_hash'][:12]}\t{state}{reason}"
        )


@report_app.command("sign")
def report_sign(
    month: Annotated[str, typer.Argument(help="YYYY-MM in the contract's time zone")],
    version: Annotated[int, typer.Argument(min=1, help="the issued version to sign")],
    by: Annotated[str, typer.Option(help="who signs (the assessor's name; kept with the version and audited)")],
    contract: ContractOption = None,
) -> None:
    """Sign an issued version: the month is then closed and this version is what is paid.

    Only one version of a month is signed at a time: to sign another, issue a new version with --reason
    (`report MONTH --issue --reason TEXT`) and sign that one.
    """

    async def main(service: Any) -> Any:
        return await service.sign_report(month, version, by=by, contract_id=contract)

    signed = _run(main)
    typer.echo(f"signed version {signed.version} of {signed.month} (contract {signed.contract_id}) by {by}: closed")


# ---------------------------------------------------------------------- evidence
evidence_app = typer.Typer(help="Evidence files (photos, signed reports) for exclusions, kept by content hash.")
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("add")
def evidence_add(
    file: Annotated[Path, typer.Argument(help="the file to keep (a photo, a scanned signed report)")],
    by: Annotated[str, typer.Option(help="who supplies it (kept in the audit log)")],
) -> None:
    """Store an evidence file; print its id. Name it in an exclusion event as "evidence": "sha256:<id>"."""
    import mimetypes

    try:
        content = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: cannot read ({exc.strerror})") from None
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"

    async def main(service: Any) -> str:
        evidence_id = str(await service.repo.save_evidence(content, file.name, media_type, by))
        await service.repo.append_audit(
            by, "evidence", f"sha256:{evidence_id}", {"file": file.name, "size": len(content)}
        )
        return evidence_id

    evidence_id = _run(main)
    typer.echo(f"sha256:{evidence_id}")


# ---------------------------------------------------------------------- tokens
DEMO_TOKEN = "demo-admin"
DEMO_TOKEN_FILE = "demo-admin.token"


async def demo_token(service: Any, path: Path) -> tuple[str | None, str]:
    """The demo's admin token: ``(secret, what was done)``. Reused when ``path`` holds the secret of the
    unrevoked token named ``demo-admin``; else created under that name and its secret written to ``path``
    (mode 0600: only its hash is in the database). When a token of that name exists but its secret is not at
    hand, none is minted: the note says what to run."""
    import os

    from monitor.errors import StorageError

    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError:
        secret = ""
    if secret and await service.repo.role_for_token(secret) == (DEMO_TOKEN, "admin"):
        return secret, f"reused, secret in {path}"
    try:
        secret = str(await service.repo.create_token(DEMO_TOKEN, "admin"))
    except StorageError:
        return None, (
            f"a token named {DEMO_TOKEN} exists but its secret is not in {path}; `slawatch token revoke "
            f"{DEMO_TOKEN}` and run the demo again, or `slawatch token create --role admin --name NAME`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret, f"created, secret kept in {path}"


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="the token's name")]) -> None:
    """Revoke the unrevoked token called NAME (kept in the list, revoked): it stops working at once, in an API
    already running within 2 s (it keeps valid tokens that long: monitor.storage.token_cache)."""

    async def main(service: Any) -> bool:
        return await service.repo.revoke_token_by(name, "cli") is not None

    if not _run(main):
        raise _fail(f"no unrevoked token named {name!r}")
    typer.echo(f"token {name} revoked")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    name: Annotated[str | None, typer.Option(help="a name for the token (default: role and time)")] = None,
    expires: Annotated[
        str | None, typer.Option(help="a lifetime (90m, 12h, 30d, 8w) or an RFC 3339 time; default: never")
    ] = None,
) -> None:
    """Create an API token for a role; prints the secret once (only its hash is stored)."""
    if role not in ROLES:
        raise _fail(f"--role {role!r} is not one of {', '.join(ROLES)}")
    label = name or f"{role}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    if not NAME_RE.fullmatch(label):
        raise _fail("--name must be 1-64 characters without control characters")

    async def main(service: Any) -> tuple[str, datetime | None]:
        until = None
        if expires is not None:
            until = parse_expiry(expires, service.clock(), await service.event_timezone(), "--expires")
        secret, _created = await service.repo.create_expiring_token(label, role, until, by="cli")
        return str(secret), until

    secret, until = _run(main)  # a bad --expires is an InputError: _run reports it
    lifetime = "" if until is None else f", expires {until.isoformat()}"
    typer.echo(f"token {label} ({role}{lifetime}): {secret}", err=True)
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """The tokens (never their secrets): name, role, created, revoked or expiry, and whether it works now."""

    async def main(service: Any) -> tuple[list[dict[str, Any]], datetime]:
        return list(await service.repo.token_records()), service.clock()

    rows, now = _run(main)
    for r in rows:
        expires = r["expires_at"]
        active = r["revoked_at"] is None and (expires is None or expires > now)
        state = "active" if active else ("revoked" if r["revoked_at"] is not None else "expired")
        until = "never" if expires is None else expires.isoformat()
        typer.echo(f"{r['name']}\t{r['role']}\t{state}\tcreated {r['created_at'].isoformat()}\texpires {until}")


# ---------------------------------------------------------------------- sample month, demo, serve
@app.command("sample-events")
def sample_events(
    month: Annotated[str, typer.Argument(help="YYYY-MM (Asia/Shanghai)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    scale: Annotated[
        int, typer.Option(help="for the sample network at this scale (see inventory sample --scale); 1..60")
    ] = 1,
) -> None:
    """Write a realistic month of events (JSON Lines) for the sample network, for replay and benchmarks; at
    --scale K, for K counties with K times the faults."""
    import json

    from monitor.assessment import Month
    from monitor.policy import DEFAULT_POLICY
    from monitor.sample import sample_inventory
    from monitor.sample_events import month_events

    try:
        m = Month.parse(month, DEFAULT_POLICY)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        inventory = sample_inventory(scale=scale)
    except ValueError as exc:
        raise _fail(f"--scale: {exc}") from None
    events = month_events(inventory, m.start, days=m.length_days, seed=seed, scale=scale)
    _write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), output)


@app.command()
def demo(
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="bring up the lab and watch it live (needs root)")
    ] = True,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="keep running: the API (and live loop)")] = True,
) -> None:
    """The newcomer's tour: the sample network, last month replayed and reported, then the live network.

    Uses SQLite under SLAWATCH_DATA_DIR (default ./data). As root it brings up the lab (every sample address
    answering ICMP on loopback, SNMP agents for a few CPEs) and runs the live service on it with 5 s polls
    and the API on 127.0.0.1:8080; Ctrl-C stops both and takes the lab down. Without root, only the API.
    Safe to run again: identical events are one event; after a crash (kill -9) the lab still up is adopted
    with its faults in progress, and the admin token named demo-admin is reused (its secret is kept in
    SLAWATCH_DATA_DIR/demo-admin.token, mode 0600), not minted again.
    """
    import os
    import subprocess

    from monitor.assessment import Month
    from monitor.events import parse_event
    from monitor.inventory_io import dump_inventory
    from monitor.policy import DEFAULT_POLICY
    from monitor.sample import sample_inventory
    from monitor.sample_events import month_events

    settings = Settings()
    now = datetime.now(UTC)
    local = now.astimezone(DEFAULT_POLICY.zone)
    prev = f"{local.year - (local.month == 1):04d}-{(local.month - 2) % 12 + 1:02d}"
    m = Month.parse(prev, DEFAULT_POLICY)
    inventory = sample_inventory()

    async def main(service: Any) -> tuple[Any, tuple[str | None, str]]:
        diff = await service.import_inventory(inventory)
        typer.echo(f"inventory: sample network, {len(inventory.channels)} channels ({diff.summary()})")
        raw = month_events(inventory, m.start, days=m.length_days)
        located = [(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)]
        result = await service.ingest(located, source="demo")
        typer.echo(f"events: {prev} replayed, {result.received} events, {result.stored} new")
        issued = await service.report(prev)  # computed and printed; nothing stored (issuing is an assessor's act)
        token = await demo_token(service, settings.data_dir / DEMO_TOKEN_FILE)
        return issued, token

    issued, token = _run(main)
    a = issued.assessment
    levels = {lvl: sum(1 for i in a.incidents if i.incident.level == lvl) for lvl in (1, 2, 3, 0)}
    typer.echo(
        f"report {prev} (computed, not issued): online rate {float(a.seconds.rate):.4%}, incidents L1 {levels[1]}, "
        f"L2 {levels[2]}, L3 {levels[3]}, faults {levels[0]}; score {a.score}, share paid {a.share_paid:.0%}, "
        f"amount {a.amount} of {a.base} CNY"
    )
    from monitor.report import points_summary

    for line in points_summary(issued.body, claim_hour=DEFAULT_POLICY.claim_hour):  # where the points went
        typer.echo(line)
    base = f"http://{settings.api_host}:{settings.api_port}"
    secret, note = token
    typer.echo(f"admin token {DEMO_TOKEN} ({note}): {secret or 'not shown'}")
    if secret:
        typer.echo(f"  curl -H 'Authorization: Bearer {secret}' '{base}/api/v1/reports/monthly/{prev}?format=csv'")
        typer.echo(
            f"  curl -H 'Authorization: Bearer {secret}' -OJ '{base}/api/v1/reports/monthly/{prev}?format=pdf'"
            "  # also format=zip (one CSV per table) and html"
        )
    if not serve_api:
        return
    lab = live and os.geteuid() == 0
    if live and not lab:
        typer.echo("not root: no lab and no live polling (raw ICMP and nftables need root); serving the API only")
    if not lab:
        serve()
        return
    sample_file = settings.data_dir / "sample-network.csv"
    sample_file.write_text(dump_inventory(inventory, "csv", include_secrets=True), encoding="utf-8")
    lab_cmd = [sys.executable, "-m", "collectors.lab.cli"]
    # --adopt: after a crash (kill -9) the lab is still up, with its faults in progress: keep it
    up = subprocess.run([*lab_cmd, "up", "--adopt", "--inventory", str(sample_file)], check=False)
    if up.returncode != 0:
        raise _fail("the lab did not come up (see above)")
    typer.echo(
        "live: the lab answers for every sample address; polling every 5 s. In another terminal:\n"
        "  .venv/bin/slawatch status                      # counts by state, open incidents, unknown nodes\n"
        "  .venv/bin/slawatch lab fail CPE-0042 --for 2m  # CPE power loss: one incident holding its cameras\n"
        "  .venv/bin/slawatch lab scenario branch-cut     # a fibre branch: one incident, level by channels\n"
        "  .venv/bin/slawatch lab blind --for 1m          # the collector's sentinel goes silent: unknown, not down"
    )
    try:
        run(demo_profile=True, api=True)
    finally:
        subprocess.run([*lab_cmd, "down"], check=False)


@app.command()
def run(
    demo_profile: Annotated[
        bool, typer.Option("--demo", help="short intervals (5 s polls) for a demo or a lab")
    ] = False,
    api: Annotated[bool, typer.Option("--api/--no-api", help="serve the REST API in the same process")] = True,
) -> None:
    """Run slawatch live: collectors (ICMP to every polled node, SNMP to CPEs), engine, storage and API.

    Intervals and limits come from SLAWATCH_* settings (SLAWATCH_ICMP_INTERVAL_S, SLAWATCH_SENTINELS, ...).
    Stops cleanly on Ctrl-C or SIGTERM; the time it is not running is blind (unknown), never down.
    """
    from api.server import run_live
    from collectors.errors import CollectorError
    from monitor.live import LiveSettings

    settings = Settings()
    setup_logging(settings.log_level)
    profile = LiveSettings.demo() if demo_profile else None
    try:
        asyncio.run(run_live(settings, LiveSettings.from_settings(settings, profile), serve_api=api))
    except (SlawatchError, CollectorError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@app.command()
def status(
    limit: Annotated[int, typer.Option(help="at most this many lines per listing")] = 20,
    stale_after: Annotated[float, typer.Option(help="seconds after which a silent collector counts as stopped")] = 30,
) -> None:
    """The live state of the network: nodes by state, open incidents by level, nodes unknown, the collector."""
    from monitor.status import load_status, status_text

    async def main(service: Any) -> str:
        return status_text(await load_status(service, stale_after_s=stale_after), limit=limit)

    typer.echo(_run(main))


@app.command()
def serve() -> None:
    """Run the REST API (SLAWATCH_API_HOST, SLAWATCH_API_PORT; default 127.0.0.1:8080)."""
    import uvicorn

    from api.app import create_app

    settings = Settings()
    setup_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
