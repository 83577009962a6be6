"""Response models of the API (what the OpenAPI document promises and every 200 is checked against), and the
documented error responses: every error is the problem document of :mod:`api.errors`.

    @router.get("/x", response_model=Thing, responses=problems(401, 403, 404))
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: RFC 3339 with the contract's offset (SPEC §6).
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-03-10T08:00:00+08:00"])]
#: ``{scope}@{start UTC}`` (``~2``... when taken: SPEC R6).
INCIDENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z(~[0-9]+)?$"
IncidentId = Annotated[str, Field(examples=["CPE-0042@2026-10-03T00:00:00Z"])]
NodeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["CPE-0042"])]
#: A month key (SPEC R10: ASCII ``YYYY-MM``).
MONTH_PATTERN = r"^[0-9]{4}-[0-9]{2}$"
EVIDENCE_PATTERN = r"^sha256:[0-9a-f]{64}$"


class Problem(BaseModel):
    """An error (RFC 9457 problem document, ``application/problem+json``) with slawatch's own members."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Unprocessable Content"])
    status: int = Field(ge=400, le=599)
    detail: str
    error: str = Field(description="the message (same as detail)")
    where: str | None = Field(default=None, description="where the fault is: query, path, body, request line N")
    field: str | None = Field(default=None, description="the input at fault")


_WHY = {
    401: "no, an unknown, a revoked or an expired bearer token",
    403: "the token's role may not do this",
    404: "no such resource",
    409: "the resource's state refuses the change; nothing stored",
    413: "the request body is over its limit; nothing stored",
    422: "a refused input (the field is named); nothing stored",
    503: "the database is unavailable, or the live service is not running in this process",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each status documented with the problem body it returns."""
    return {
        s: {
            "description": _WHY.get(s, "an error"),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


READ = (401, 422, 503)
WRITE = (401, 403, 413, 422, 503)


# ---------------------------------------------------------------------- incidents
class IncidentSummary(BaseModel):
    id: IncidentId
    scope: str
    start: Time
    end: Time | None
    open: bool
    level: int = Field(ge=0, le=3, description="1-3, or 0 for a fault")
    peak: int = Field(description="the most channels offline at one instant")
    channels: int = Field(description="how many channels it ever held")
    ack: Time | None
    ack_by: str | None
    onsite: Time | None
    onsite_by: str | None
    excluded: str | None = Field(description="the exclusion status: requested, approved, rejected (latest step)")


class IncidentPage(BaseModel):
    contract: str
    incidents: list[IncidentSummary]
    limit: int
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class Member(BaseModel):
    position: int
    channel: str
    node: str


class TimelineEntry(BaseModel):
    at: Time
    known: Time
    kind: str = Field(examples=["opened", "joined", "level", "ack", "onsite", "explanation", "exclusion", "ended"])
    detail: str


class Clocks(BaseModel):
    """The incident's clocks from its start, to its end or (open) to ``as_of``."""

    as_of: Time
    response_s: float = Field(description="start to acknowledgement (or end, or now while neither)")
    response_running: bool
    recovery_s: float = Field(description="start to end (or now while open)")
    recovery_running: bool
    onsite_s: float | None = Field(description="start to arrival on site; null before it")


class Limits(BaseModel):
    """The limits of the incident's level (SPEC §5; null for a fault) and the contract body's restore limit."""

    response_limit_s: int | None
    recovery_limit_s: int | None
    unexplained_after_s: int | None
    restore_limit_s: int = Field(description="2 h inside the county, 8 h outside (SPEC §3)")


class IncidentDetail(IncidentSummary):
    contract: str
    members: list[Member]
    timeline: list[TimelineEntry]
    clocks: Clocks
    limits: Limits


# ---------------------------------------------------------------------- queue, audit, tokens, daily
class ExclusionPending(BaseModel):
    contract: str
    incident: IncidentId
    scope: str
    level: int
    start: Time
    end: Time | None
    requested_at: Time | None
    requested_by: list[str]


class QueueResponse(BaseModel):
    exclusions: list[ExclusionPending]
    maintenance: list[dict[str, Any]] = Field(description="maintenance requests awaiting consent (GET /maintenance)")


class AuditItem(BaseModel):
    seq: int
    at: Time
    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any] | None


class AuditPage(BaseModel):
    entries: list[AuditItem]
    limit: int
    next_cursor: str | None


class TokenItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    role: str
    created_at: Time
    revoked_at: Time | None
    expires_at: Time | None
    active: bool


class TokenList(BaseModel):
    tokens: list[TokenItem]


class TokenCreated(TokenItem):
    secret: str = Field(description="the bearer secret, shown this once (only its hash is stored)")


class DailyChannel(BaseModel):
    channel: str
    node: str
    stretch_start: Time | None
    incident: IncidentId
    ack: Time | None
    ack_by: str | None
    excluded: bool = Field(description="the incident is excluded (approved exclusion or maintenance)")
    maintenance: bool = Field(description="the channel is inside a maintenance window at the claim hour")
    breach: bool


class DailyList(BaseModel):
    contract: str
    date: str
    at: Time
    as_of: Time
    claim_grace_s: int
    channels: list[DailyChannel]
    breaches: int


# ---------------------------------------------------------------------- inventory
class InventoryNode(BaseModel):
    id: str
    kind: str = Field(examples=["area", "branch", "power", "switch", "site", "cpe", "camera", "nvr"])
    parent: str | None
    name: str
    address: str | None
    channels: int
    bandwidth_mbps: int | None
    monthly_fee: str | None = Field(description="a decimal, as text")
    in_county: bool | None
    commissioned: Time | None
    decommissioned: Time | None
    snmp_configured: bool = Field(description="whether it has SNMP settings (never returned themselves)")
    area: str
    circuit: str | None
    state: str = Field(examples=["up", "down", "unknown"])
    since: Time | None
    behind: str | None = Field(description="the topmost node on its path that is not up, if any")


class InventoryPage(BaseModel):
    state_source: str = Field(examples=["live", "stored"])
    nodes: list[InventoryNode]
    limit: int
    next_cursor: str | None


class InventoryNodeDetail(InventoryNode):
    state_source: str = Field(examples=["live", "stored"])
    children: list[str]


class ImportIds(BaseModel):
    added: list[str]
    changed: list[str]
    removed: list[str]


class InventoryImport(BaseModel):
    nodes: int
    contracts: list[str]
    added: int
    changed: int
    removed: int
    ids: ImportIds = Field(description="the first 100 ids of each kind of change")


# ---------------------------------------------------------------------- events, maintenance, evidence
class Unmatched(BaseModel):
    where: str
    type: str
    reason: str


class NotApplied(BaseModel):
    where: str
    reason: str


class IngestResponse(BaseModel):
    """What a batch of events did: all stored or none (a refusal is a problem)."""

    received: int
    stored: int
    duplicates: int = Field(description="events already stored (the same event twice is one)")
    confirmed: int = Field(description="state changes confirmed from polls")
    unmatched: list[Unmatched] = Field(description="stored events that applied to no incident (kept, not applied)")
    not_applied: list[NotApplied] = Field(description="polls not applied (SPEC R7), with the reason")


class MaintenanceRequestOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    scope: str
    start: Time = Field(alias="from")
    end: Time = Field(alias="to")
    reason: str
    requested_by: str
    requested_at: Time
    late: bool = Field(description="asked for after the window's start (consent is then explicit)")
    status: str = Field(examples=["requested", "consented", "refused"])
    decided_by: str | None
    decided_at: Time | None
    note: str | None
    event: str | None = Field(default=None, description="the maintenance event its consent stored")


class MaintenanceList(BaseModel):
    requests: list[MaintenanceRequestOut]


class EvidenceUploaded(BaseModel):
    id: str = Field(pattern=EVIDENCE_PATTERN)
    size: int
    media_type: str
    filename: str


# ---------------------------------------------------------------------- health, live nodes
class Health(BaseModel):
    status: str = Field(examples=["ok", "unavailable"])
    database: str = Field(examples=["ok", "unavailable"])


class LiveNode(BaseModel):
    id: str
    kind: str
    area: str
    state: str = Field(examples=["up", "down", "unknown"])
    since: Time | None
    last_poll: Time | None
    ok: bool | None
    behind: str | None


class LiveNodes(BaseModel):
    as_of: Time
    state: str | None
    total: int
    truncated: bool
    nodes: list[LiveNode]
    source: str = Field(examples=["live", "stored"], description="the live service here, or the stored states")
    collector: str = Field(examples=["running", "stalled", "stopped", "never ran"])


class LiveNodeDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    name: str
    parent: str | None
    area: str
    circuit: str | None
    address: str | None
    polled: bool
    snmp_configured: bool
    behind: str | None
    as_of: Time
    state: str
    since: Time | None
    last_poll: Time | None
    ok: bool | None
    rtt_ms: float | None
    loss: float | None
    snmp_available: bool | None
    facts: list[dict[str, Any]]
    source: str = Field(examples=["live", "stored"], description="the live service here, or the stored states")
    collector: str = Field(examples=["running", "stalled", "stopped", "never ran"])


# ---------------------------------------------------------------------- reports (SPEC §6, R8, R9)
Number = Annotated[float, Field(description="an integer or a decimal")]


class ReportPolicy(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    hash: str = Field(description="the policy's hash (what the assessment applied)")


class ReportIncident(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    level: int
    scope: str
    start: Time
    end: Time | None
    open: bool


class ReportItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    title_en: str
    title_zh: str
    points: Number | None
    lost: Number


class ReportArea(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    online_rate: float
    name: str | None = None


class ReportBody(BaseModel):
    """The monthly report (SPEC §6); the renderer adds more fields after these (kept: extra fields are valid)."""

    model_config = ConfigDict(extra="allow")

    month: str = Field(pattern=MONTH_PATTERN, examples=["2026-03"])
    policy: ReportPolicy
    version: int | None = Field(description="the issued version; null for a computation")
    as_of: Time
    generated_at: Time
    channels: int
    expected_channel_seconds: Number
    online_channel_seconds: Number
    excluded_channel_seconds: Number
    blind_channel_seconds: Number
    online_rate: float
    claim_breaches: int
    incidents: list[ReportIncident]
    items: list[ReportItem]
    areas: list[ReportArea]
    score: Number
    share_paid: float
    base: float = Field(description="the month's base fee (yuan, to the cent)")
    amount: float = Field(description="what is paid (yuan, to the cent)")


class VersionInfo(BaseModel):
    """What is known about an issued version."""

    version: int = Field(ge=1)
    as_of: Time
    issued_at: Time
    issued_by: str
    policy_hash: str
    last_event_seq: int | None
    reason: str | None
    signed: bool
    signed_by: str | None
    signed_at: Time | None
    superseded_by: int | None


class _ContractMonth(BaseModel):
    contract: str
    month: str = Field(pattern=MONTH_PATTERN)


class SignedVersionInfo(VersionInfo, _ContractMonth):
    """A version just signed: its contract and month, then what :class:`VersionInfo` says (in that order:
    pydantic takes the fields of the bases from the last one in the MRO to the first)."""


class VersionList(BaseModel):
    contract: str
    month: str = Field(pattern=MONTH_PATTERN)
    closed: bool = Field(description="a version is signed")
    signed_version: int | None
    versions: list[VersionInfo]


class ClosedMonthReport(BaseModel):
    """A closed month's JSON report: the signed version beside a recomputation and what changed since."""

    model_config = ConfigDict(extra="allow")

    closed: bool = Field(description="always true")
    month: str = Field(pattern=MONTH_PATTERN)
    signed_version: VersionInfo
    signed: ReportBody = Field(description="the signed version's body, as issued")
    recomputed: ReportBody
    changes_since_signature: dict[str, Any] | None = Field(
        description="signed_version, events_received, events, events_dated_outside_month, differences"
    )


# ---------------------------------------------------------------------- alerts
class AlertTarget(BaseModel):
    pending: int
    sent: int
    parked: int
    oldest_pending: Time | None = Field(default=None, description="the oldest undelivered message (absent: none)")


class ParkedMessage(BaseModel):
    id: str
    alert_id: str
    target: str
    kind: str
    incident: str
    attempts: int
    last_error: str | None


class AlertStatus(BaseModel):
    wired: bool = Field(description="alerts are wired into this process (a rules file is set)")
    open_incidents: int = Field(description="incidents being alerted")
    targets: dict[str, AlertTarget]
    parked: list[ParkedMessage] = Field(description="parked messages, newest first")
