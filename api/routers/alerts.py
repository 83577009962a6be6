"""Alerts in the API: the one-tap acknowledgement page every crew message links to (``/ack/{token}``), the
outbox status (``GET /api/v1/alerts/status``), and the wiring of alerts into the API's process.

No login for the page: the token (:mod:`monitor.alerts.ackpage`, signed with ``SLAWATCH_ALERT_SECRET``,
expiring, naming one incident) is the credential. ``GET`` shows the incident's clocks and a form for the
crew's name; ``POST`` records an ``ack`` event through :meth:`Service.ingest`, the same code the events route
uses, known at its receipt. A forged or malformed token is refused with 403, an expired one with 410, an
ended incident with 409 (problem documents). The page is one small HTML document: no scripts, styles inline,
no external assets.

Wiring (this router's lifespan, nested in the app's): when ``SLAWATCH_ALERT_RULES_FILE`` is set (or
``app.state.alert_settings`` names a rules file) and the service has no alert hook yet, the service gets one
(so every ingest of this process, the live loop's in ``slawatch run`` included, plans alerts), the delivery
loop runs beside the API, and ``app.state.alert_outbox`` gives the metrics the outbox depth and parked count.
Without rules nothing is wired.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from api.deps import ServiceDep, authenticate
from api.errors import ApiError
from api.models import READ, AlertStatus, problems
from monitor.alerts.ackpage import AckToken, AckTokenError, read_token
from monitor.alerts.delivery import Delivery
from monitor.alerts.hook import hook_from_settings
from monitor.alerts.outbox import outbox_probe, outbox_status
from monitor.contracts import Contract
from monitor.events import AckEvent, format_time
from monitor.service import Service
from monitor.settings import AlertSettings

log = logging.getLogger("slawatch.alerts")


@asynccontextmanager
async def _alerts_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AlertSettings = getattr(app.state, "alert_settings", None) or AlertSettings()
    app.state.alert_settings = settings
    service: Service | None = getattr(app.state, "service", None)
    if service is None or service.alerts is not None or settings.rules_file is None:
        yield
        return
    hook = hook_from_settings(service.db, settings)
    assert hook is not None
    service.alerts = hook
    app.state.alert_outbox = outbox_probe(service.db)
    stop = asyncio.Event()
    delivery = Delivery(service.db, hook.rules, settings, hook=hook, clock=service.clock)
    task = asyncio.create_task(delivery.run(stop), name="slawatch-alerts")
    log.info("alerts wired", extra={"rules": str(settings.rules_file), "targets": len(hook.rules.targets)})
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        service.alerts = None
        app.state.alert_outbox = None


router = APIRouter(tags=["alerts"], lifespan=_alerts_lifespan)

MAX_NAME = 64


def alert_settings(request: Request) -> AlertSettings:
    """The app's alert settings (``app.state.alert_settings``), else read from the environment once."""
    settings: AlertSettings | None = getattr(request.app.state, "alert_settings", None)
    if settings is None:
        settings = AlertSettings()
        request.app.state.alert_settings = settings
    return settings


async def _token(request: Request, service: Service, token: str) -> tuple[AckToken, Contract, dict[str, Any]]:
    secret = alert_settings(request).secret
    if not secret:
        raise ApiError(404, "one-tap acknowledgement is not configured (SLAWATCH_ALERT_SECRET)")
    try:
        found = read_token(secret, token, service.clock())
    except AckTokenError as exc:
        raise ApiError(exc.status, exc.message, where="path", field="token") from None
    contract = next((c for c in await service.contracts() if c.id == found.contract_id), None)
    incident = None
    if contract is not None:
        rows = await service.repo.load_incidents(contract.id)
        incident = next((r for r in rows if r["id"] == found.incident_id), None)
    if contract is None or incident is None:
        raise ApiError(404, f"no incident {found.incident_id!r}", where="path", field="token")
    return found, contract, incident


def _when(value: datetime | None, zone: tzinfo) -> str:
    return "—" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _left(start: datetime, limit_s: int, now: datetime) -> str:
    left = int((start + timedelta(seconds=limit_s) - now).total_seconds())
    text = f"{abs(left) // 3600} h {(abs(left) % 3600) // 60:02d} min"
    return f"超时 overdue {text}" if left < 0 else text


def _page(incident: dict[str, Any], contract: Contract, now: datetime, message: str = "", form: bool = True) -> str:
    zone = contract.policy.zone
    e = html.escape
    rows = [
        ("故障 Incident", e(incident["id"])),
        ("范围 Scope", e(incident["scope"])),
        ("级别 Level", str(incident["level"])),
        ("峰值路数 Peak channels", str(incident["peak"])),
        ("开始 Start", _when(incident["start"], zone)),
        ("确认 Acknowledged", e(f"{_when(incident['ack'], zone)} {incident.get('ack_by') or ''}")),
        ("到场 On site", e(f"{_when(incident['onsite'], zone)} {incident.get('onsite_by') or ''}")),
        ("恢复 Ended", _when(incident["end"], zone)),
    ]
    rule = contract.policy.levels.get(incident["level"])
    if rule is not None and incident["end"] is None:
        if incident["ack"] is None:
            rows.append(("响应剩余 Response left", _left(incident["start"], rule.response_limit_s, now)))
        rows.append(("恢复剩余 Recovery left", _left(incident["start"], rule.recovery_limit_s, now)))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    notice = f'<p class="msg">{e(message)}</p>' if message else ""
    action = ""
    if form and incident["ack"] is None and incident["end"] is None:
        action = (
            '<form method="post"><label for="by">姓名 Your name</label>'
            f'<input id="by" name="by" required maxlength="{MAX_NAME}" autocomplete="name">'
            '<button type="submit">确认故障 Acknowledge</button></form>'
        )
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>slawatch 确认 Acknowledge</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1em;max-width:32em}"
        "th{text-align:left;padding-right:1em;font-weight:normal;color:#555}td{font-weight:bold}"
        "input,button{font-size:1.2em;width:100%;margin:.4em 0;padding:.5em;box-sizing:border-box}"
        "button{background:#c00;color:#fff;border:0;border-radius:.3em}.msg{background:#efe;padding:.5em}"
        f"</style></head><body><h1>slawatch</h1>{notice}<table>{table}</table>{action}</body></html>"
    )


#: The page's refusals: 403 a forged token, 410 an expired one, 404 not configured or no such incident.
_PAGE_ERRORS = {
    **problems(403, 404, 503),
    410: {**problems(410)[410], "description": "the link has expired"},
}


@router.get(
    "/ack/{token}",
    response_class=HTMLResponse,
    summary="One-tap acknowledgement page (signed link)",
    responses={200: {"description": "The page (HTML)", "content": {"text/html": {}}}, **_PAGE_ERRORS},
)
async def ack_page(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    _found, contract, incident = await _token(request, service, token)
    return HTMLResponse(_page(incident, contract, service.clock()))


@router.post(
    "/ack/{token}",
    response_class=HTMLResponse,
    summary="Record the acknowledgement (form field by)",
    responses={
        200: {"description": "The page, acknowledged (HTML)", "content": {"text/html": {}}},
        **_PAGE_ERRORS,
        **problems(409, 413, 422),
    },
)
async def ack_record(token: str, request: Request, service: ServiceDep) -> HTMLResponse:
    found, contract, incident = await _token(request, service, token)
    try:
        form = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ApiError(422, "the form is not UTF-8", where="body", field="by") from None
    name = " ".join((form.get("by") or [""])[0].split())
    if not name or len(name) > MAX_NAME:
        raise ApiError(422, f"give your name (1-{MAX_NAME} characters)", where="body", field="by")
    if incident["end"] is not None:
        raise ApiError(409, f"incident {found.incident_id} has ended: nothing to acknowledge", field="token")
    if incident["ack"] is not None:
        message = f"已确认 Already acknowledged by {incident.get('ack_by') or '?'}"
        return HTMLResponse(_page(incident, contract, service.clock(), message))
    now = service.clock()
    event = AckEvent(at=now, incident=found.incident_id, by=name).received(now)
    await service.ingest([("ack page", event)], source=f"ack-link:{name}", actor=name)
    rows = await service.repo.load_incidents(contract.id)
    incident = next((r for r in rows if r["id"] == found.incident_id), incident)
    return HTMLResponse(_page(incident, contract, service.clock(), f"已确认 Acknowledged by {name}"))


@router.get(
    "/api/v1/alerts/status",
    dependencies=[Depends(authenticate)],
    summary="Alert outbox status",
    response_model=AlertStatus,
    response_model_exclude_unset=True,  # a target's oldest_pending only when it has one
    responses=problems(*READ),
)
async def alerts_status(service: ServiceDep) -> dict[str, Any]:
    """Messages by target and status, the oldest undelivered message per target, the parked messages (newest
    first) and how many incidents are being alerted."""
    status = await outbox_status(service.db)
    targets: dict[str, dict[str, Any]] = {}
    for (target, state), count in sorted(status.counts.items()):
        targets.setdefault(target, {"pending": 0, "sent": 0, "parked": 0})[state] = count
    for target, oldest in status.oldest_pending.items():
        targets.setdefault(target, {"pending": 0, "sent": 0, "parked": 0})["oldest_pending"] = format_time(oldest)
    return {
        "wired": service.alerts is not None,
        "open_incidents": status.open_incidents,
        "targets": targets,
        "parked": [
            {
                "id": m.id,
                "alert_id": m.alert_id,
                "target": m.target,
                "kind": m.kind,
                "incident": m.incident_id,
                "attempts": m.attempts,
                "last_error": m.last_error,
            }
            for m in status.parked
        ],
    }
