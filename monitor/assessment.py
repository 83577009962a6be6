"""The monthly assessment (SPEC §4–§5): from a frozen :class:`~monitor.engine.History` to score and amount.

Pure functions over frozen values; no clock of their own (the report's ``as_of`` is passed in).

Channel-seconds are counted in integer microseconds inside ``[month start, min(month end, as_of))`` with this
precedence per channel-second: inactive (counts nowhere) > excluded (maintenance over the channel, or offline
time spent in an excluded incident) > blind (unknown) > online / offline.
``online_rate = online / (online + offline)``.

An incident is **excluded** (not scored) for one of two reasons, decided once per incident by :func:`verdict`:
its third-party exclusion is approved, or it is planned maintenance that ended within its cover (SPEC R4).
Every rule that names an excluded incident (channel-seconds, the claim rule, the items) takes the one set of
excluded incident ids, whatever the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from monitor.channels import ChannelState
from monitor.contracts import Contract
from monitor.engine import History, state_at
from monitor.events import ExclusionStatus, FindingEvent, MaintenanceEvent
from monitor.incidents import IncidentView
from monitor.inventory import Inventory, NodeKind
from monitor.policy import Policy

US = 1_000_000  # microseconds per second

ITEM_TITLES: dict[str, tuple[str, str]] = {
    "response": ("Incident response time", "事件响应时间"),
    "recovery": ("Fault recovery time", "故障恢复时间"),
    "online": ("Image online rate", "图像在线率"),
    "4a": ("Image integrity rate", "图像完好率"),
    "4b": ("Storage compliance rate", "储存合格率"),
    "4c": ("Complaints", "投诉"),
    "4d": ("Staffing", "人员到位"),
    "4e": ("Inspections (incl. 11:00 claim rule)", "巡检(含11:00领取规定)"),
    "5": ("Documents", "文档管理"),
}


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in a time zone; ``start``/``end`` are UTC instants, ``[start, end)``."""

    year: int
    month: int
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str, policy: Policy) -> Month:
        # ASCII digits only (str.isdigit and int() take full-width ones); years where times are stored (R10).
        found = re.fullmatch(r"(20[0-9]{2})-(0[1-9]|1[0-2])", text, re.ASCII)
        if found is None:
            raise ValueError(f"month {text[:40]!r} is not YYYY-MM (2000-01 to 2099-12)")
        year, month = int(found[1]), int(found[2])
        zone = policy.zone
        start = datetime(year, month, 1, tzinfo=zone)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
        return cls(year, month, start.astimezone(UTC), end.astimezone(UTC))

    @property
    def length_days(self) -> int:
        """Calendar days in the month (a DST change would make the UTC span an hour off: rounded)."""
        return round((self.end - self.start).total_seconds() / 86400)

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def claim_instants(self, policy: Policy) -> list[datetime]:
        """The claim-rule instants (``claim_hour``:00 local) of every day of the month, in UTC."""
        zone = policy.zone
        first = self.start.astimezone(zone).date()
        out = []
        day = first
        while True:
            t = datetime.combine(day, time(policy.claim_hour), tzinfo=zone).astimezone(UTC)
            if t >= self.end:
                break
            out.append(t)
            day += timedelta(days=1)
        return out


@dataclass(frozen=True, slots=True)
class Seconds:
    """Channel-seconds by category, in microseconds."""

    online: int = 0
    offline: int = 0
    excluded: int = 0
    blind: int = 0

    @property
    def expected(self) -> int:
        return self.online + self.offline

    @property
    def active(self) -> int:
        return self.online + self.offline + self.excluded + self.blind

    def __add__(self, other: Seconds) -> Seconds:
        return Seconds(
            self.online + other.online,
            self.offline + other.offline,
            self.excluded + other.excluded,
            self.blind + other.blind,
        )

    @property
    def rate(self) -> Fraction:
        """Online rate; 1 when nothing was expected."""
        return Fraction(self.online, self.expected) if self.expected else Fraction(1)


@dataclass(frozen=True, slots=True)
class IncidentScore:
    incident: IncidentView
    clock_start: datetime
    response_s: Fraction
    recovery_s: Fraction
    onsite_s: Fraction | None
    restore_limit_s: int
    restore_met: bool
    excluded: bool
    excluded_by: str | None  # "exclusion" | "maintenance"
    response_lost: int
    recovery_lost: int
    unexplained_lost: int


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    title_en: str
    title_zh: str
    points: Decimal | None
    lost: Decimal
    details: str


@dataclass(frozen=True, slots=True)
class ClaimBreach:
    """One channel offline at a day's claim hour (SPEC §5): ``stretch_start`` is when its offline stretch began."""

    at: datetime
    channel: str
    incident: str
    stretch_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Assessment:
    contract: Contract
    month: Month
    as_of: datetime
    channels: int
    seconds: Seconds
    incidents: tuple[IncidentScore, ...]
    claim_breaches: tuple[ClaimBreach, ...]
    findings: tuple[FindingEvent, ...]
    items: tuple[Item, ...]
    areas: tuple[tuple[str, Seconds], ...]
    circuits: tuple[tuple[str, Seconds], ...]
    score: Decimal
    share_paid: Decimal
    base: Decimal
    amount: Decimal
    #: Display names (inventory ``name``) of the areas and circuits reported, as (id, name) pairs.
    names: tuple[tuple[str, str], ...] = ()
    #: The earliest observation in the history (:func:`first_observation`), None when there is none.
    first_observation: datetime | None = None
    #: Active channel-seconds (µs) the monitor observed: not blind, and not before the first observation.
    observed: int = 0

    @property
    def policy(self) -> Policy:
        return self.contract.policy

    @property
    def projection(self) -> bool:
        """True when the month is not over at ``as_of``: what is lost so far, if nothing else happens."""
        return self.as_of < self.month.end


# ---------------------------------------------------------------------- intervals
Span = tuple[datetime, datetime]


def _merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def _overlap_us(a: datetime, b: datetime, spans: Sequence[Span]) -> int:
    total = 0
    for x, y in spans:
        lo, hi = max(a, x), min(b, y)
        if hi > lo:
            total += _us(hi - lo)
    return total


def _seconds(delta: timedelta) -> Fraction:
    return Fraction(_us(delta), US)


class MaintenanceIndex:
    """Merged maintenance spans per node (a window covers its scope and everything under it), each node's
    computed once and shared by the channel-seconds, the incidents' clocks and the claim rule."""

    def __init__(self, inventory: Inventory, windows: Sequence[MaintenanceEvent]) -> None:
        self.inventory = inventory
        self.windows = tuple(w for w in windows if w.scope in inventory)
        self._spans: dict[str, list[Span]] = {}

    def spans(self, node: str) -> list[Span]:
        found = self._spans.get(node)
        if found is None:
            inv = self.inventory
            found = _merge((w.start, w.end) for w in self.windows if inv.is_at_or_under(node, w.scope))
            self._spans[node] = found
        return found


def channel_seconds(
    inventory: Inventory,
    history: History,
    window: Span,
    excluded_incidents: set[str],
    maintenance: MaintenanceIndex | None = None,
) -> dict[int, Seconds]:
    """Channel-seconds per channel inside ``window`` (already cut at as_of); ``excluded_incidents``: the ids of
    the excluded incidents (:func:`excluded_ids`), whose channels' offline time in them is excluded."""
    maintenance = maintenance or MaintenanceIndex(inventory, history.maintenance)
    lo, hi = window
    by_channel_excluded: dict[int, list[Span]] = {}
    for inc in history.incidents:
        if inc.id in excluded_incidents:
            for pos, spans in inc.intervals.items():
                by_channel_excluded.setdefault(pos, []).extend((a, b or history.as_of) for a, b in spans)
    out: dict[int, Seconds] = {}
    for pos in history.channels:
        node = inventory.channels[pos].node
        excluded = _merge([*maintenance.spans(node), *by_channel_excluded.get(pos, [])])
        excluded = [(max(a, lo), min(b, hi)) for a, b in excluded if b > lo and a < hi]
        online = offline = ex = blind = 0
        points = [(lo, state_at(history.transitions[pos], history.initial[pos], lo)[0])]
        points += [(t, s) for t, s in history.transitions[pos] if lo < t < hi]
        for i, (a, state) in enumerate(points):
            b = points[i + 1][0] if i + 1 < len(points) else hi
            if b <= a or state is ChannelState.INACTIVE:
                continue
            e = _overlap_us(a, b, excluded)
            rest = _us(b - a) - e
            ex += e
            if state is ChannelState.ONLINE:
                online += rest
            elif state is ChannelState.OFFLINE:
                offline += rest
            else:
                blind += rest
        out[pos] = Seconds(online, offline, ex, blind)
    return out


# ---------------------------------------------------------------------- incidents
EXCLUSION = "exclusion"
MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an incident counts: when its response and recovery clocks start, and why it is not scored
    (``"exclusion"``: its exclusion is approved; ``"maintenance"``: planned and over by its cover's end), or
    ``None`` when it is scored."""

    clock_start: datetime
    excluded_by: str | None

    @property
    def excluded(self) -> bool:
        return self.excluded_by is not None


def planned_until(inventory: Inventory, incident: IncidentView, maintenance: MaintenanceIndex) -> datetime | None:
    """SPEC R4: when, at the incident's start, every channel it ever holds is inside its maintenance cover (its
    windows merged where they overlap or touch), the latest end of those covers; otherwise ``None``."""
    if not maintenance.windows:
        return None
    latest: datetime | None = None
    for pos in incident.members:
        spans = maintenance.spans(inventory.channels[pos].node)
        cover = next((s for s in spans if s[0] <= incident.start < s[1]), None)
        if cover is None:
            return None
        latest = cover[1] if latest is None else max(latest, cover[1])
    return latest


def verdict(inventory: Inventory, incident: IncidentView, maintenance: MaintenanceIndex, as_of: datetime) -> Verdict:
    """SPEC §4 and R4. An approved exclusion excludes the whole incident. A planned incident (see
    :func:`planned_until`) is excluded when it ends (or, still open, is measured to ``as_of``) by its cover's
    latest end, and is otherwise scored from that moment."""
    end = incident.end if incident.end is not None else as_of
    excluded_by = EXCLUSION if incident.exclusion_status() is ExclusionStatus.APPROVED else None
    clock_start = incident.start
    cover_end = planned_until(inventory, incident, maintenance)
    if cover_end is not None:
        if end <= cover_end:
            excluded_by = excluded_by or MAINTENANCE
        else:
            clock_start = cover_end
    return Verdict(clock_start, excluded_by)


def verdicts(inventory: Inventory, history: History, maintenance: MaintenanceIndex) -> dict[str, Verdict]:
    """The verdict on every incident of the history (whatever month it started in: an excluded incident's
    offline time comes off every month it spans)."""
    return {i.id: verdict(inventory, i, maintenance, history.as_of) for i in history.incidents}


def excluded_ids(judged: Mapping[str, Verdict]) -> set[str]:
    """The ids of the excluded incidents, for every rule that names one (whatever the reason)."""
    return {incident_id for incident_id, v in judged.items() if v.excluded}


def _overrun_points(duration_s: Fraction, limit_s: int, step_s: int) -> int:
    """``1 + floor(d / step)`` for an overrun ``d > 0`` over the limit, else 0."""
    d = duration_s - limit_s
    return 1 + math.floor(d / step_s) if d > 0 else 0


def score_incident(
    inventory: Inventory,
    policy: Policy,
    incident: IncidentView,
    judged: Verdict,
    as_of: datetime,
) -> IncidentScore:
    """The incident's figures and deductions under its :func:`verdict` ``judged``."""
    end = incident.end if incident.end is not None else as_of
    clock_start, excluded_by = judged.clock_start, judged.excluded_by
    ack_or_end = end if incident.ack is None else min(incident.ack, end)
    response_s = max(Fraction(0), _seconds(ack_or_end - clock_start))
    recovery_s = max(Fraction(0), _seconds(end - clock_start))
    in_county = any(inventory[c].in_county is not False for c in incident.circuits) or not incident.circuits
    limit = policy.restore_in_county_s if in_county else policy.restore_out_county_s
    restore_met = _seconds(end - incident.start) <= limit
    response_lost = recovery_lost = unexplained_lost = 0
    if excluded_by is None and incident.level in (1, 2, 3):
        rule = policy.levels[incident.level]
        response_lost = _overrun_points(response_s, rule.response_limit_s, rule.response_step_s)
        recovery_lost = _overrun_points(recovery_s, rule.recovery_limit_s, rule.recovery_step_s)
        if not incident.explained_by(as_of):
            unexplained_lost = _overrun_points(recovery_s, rule.unexplained_after_s, rule.unexplained_step_s)
    return IncidentScore(
        incident=incident,
        clock_start=clock_start,
        response_s=response_s,
        recovery_s=recovery_s,
        onsite_s=None if incident.onsite is None else _seconds(incident.onsite - incident.start),
        restore_limit_s=limit,
        restore_met=restore_met,
        excluded=excluded_by is not None,
        excluded_by=excluded_by,
        response_lost=response_lost,
        recovery_lost=recovery_lost,
        unexplained_lost=unexplained_lost,
    )


# ---------------------------------------------------------------------- claim rule
@dataclass(frozen=True, slots=True)
class ClaimStatus:
    """One channel offline at a claim instant, and what the claim rule (SPEC §5, R4) makes of it: a breach when
    its stretch is ``long_enough`` (began at least ``claim_grace`` before), it is not inside ``maintenance``, and
    its incident is neither ``excluded`` nor ``acknowledged`` by then."""

    at: datetime
    position: int
    channel: str
    node: str
    incident: IncidentView | None
    stretch_start: datetime | None
    long_enough: bool
    maintenance: bool
    excluded: bool
    acknowledged: bool

    @property
    def breach(self) -> bool:
        return (
            self.long_enough
            and not self.maintenance
            and self.incident is not None
            and not self.excluded
            and not self.acknowledged
        )


def claim_statuses(
    inventory: Inventory,
    policy: Policy,
    history: History,
    instants: Sequence[datetime],
    excluded_incidents: set[str],
    maintenance: MaintenanceIndex | None = None,
) -> list[ClaimStatus]:
    """Every channel offline at each of ``instants`` (those before ``history.as_of``) that an incident has held,
    judged by the claim rule; by instant, then channel position. The one rule behind :func:`claim_breaches` and
    the API's daily list."""
    maintenance = maintenance or MaintenanceIndex(inventory, history.maintenance)
    instants = [t for t in instants if t < history.as_of]
    if not instants:
        return []
    grace = timedelta(seconds=policy.claim_grace_s)
    spans_of: dict[int, list[tuple[datetime, datetime | None, IncidentView]]] = {}
    for inc in history.incidents:
        for pos, spans in inc.intervals.items():
            for a, b in spans:
                spans_of.setdefault(pos, []).append((a, b, inc))
    out: list[ClaimStatus] = []
    for pos in history.channels:
        if pos not in spans_of:
            continue  # never offline
        node = inventory.channels[pos].node
        for t in instants:
            state, since = state_at(history.transitions[pos], history.initial[pos], t)
            if state is not ChannelState.OFFLINE:
                continue
            held = next((i for a, b, i in spans_of[pos] if a <= t and (b is None or t < b)), None)
            out.append(
                ClaimStatus(
                    at=t,
                    position=pos,
                    channel=inventory.channels[pos].label,
                    node=node,
                    incident=held,
                    stretch_start=since,
                    long_enough=since is not None and t - since >= grace,
                    maintenance=any(a <= t < b for a, b in maintenance.spans(node)),
                    excluded=held is not None and held.id in excluded_incidents,
                    acknowledged=held is not None and held.ack is not None and held.ack <= t,
                )
            )
    out.sort(key=lambda s: (s.at, s.position))
    return out


def claim_breaches(
    inventory: Inventory,
    policy: Policy,
    history: History,
    month: Month,
    excluded_incidents: set[str],
    maintenance: MaintenanceIndex | None = None,
) -> list[ClaimBreach]:
    """Channels offline at each day's claim hour, long enough, unacknowledged, not inside maintenance and not
    held by an excluded incident (``excluded_incidents``: :func:`excluded_ids`) (SPEC §5, R4)."""
    statuses = claim_statuses(inventory, policy, history, month.claim_instants(policy), excluded_incidents, maintenance)
    out = [
        ClaimBreach(s.at, s.channel, s.incident.id, s.stretch_start)
        for s in statuses
        if s.breach and s.incident is not None
    ]
    out.sort(key=lambda b: (b.at, b.channel))
    return out


# ---------------------------------------------------------------------- observation
def first_observation(inventory: Inventory, history: History) -> datetime | None:
    """The earliest dated channel transition that is not an active-interval boundary (commissioning or
    decommissioning): before it, a replay takes every node up (SPEC §2) without having seen anything."""
    first: datetime | None = None
    for pos in history.channels:
        node = inventory[inventory.channels[pos].node]
        bounds = (node.commissioned, node.decommissioned)
        for t, _ in history.transitions[pos]:
            if t in bounds:
                continue
            if first is None or t < first:
                first = t
            break
    return first


def _active_us(inventory: Inventory, channels: Iterable[int], lo: datetime, hi: datetime) -> int:
    """Active channel-seconds (µs) of ``channels`` inside ``[lo, hi)`` by their nodes' active intervals."""
    total = 0
    for pos in channels:
        node = inventory[inventory.channels[pos].node]
        a = lo if node.commissioned is None else max(lo, node.commissioned)
        b = hi if node.decommissioned is None else min(hi, node.decommissioned)
        if b > a:
            total += _us(b - a)
    return total


def observed_us(inventory: Inventory, history: History, window: Span, total: Seconds, first: datetime | None) -> int:
    """Channel-seconds (µs) observed inside ``window``: active, not blind, and not before ``first`` (the first
    observation; none at all: nothing was observed). Before ``first`` no channel has a transition of its own,
    so no time there is blind: the active time there comes off whole."""
    if first is None:
        return 0
    lo, hi = window
    before = _active_us(inventory, history.channels, lo, min(first, hi)) if first > lo else 0
    return max(0, total.active - total.blind - before)


# ---------------------------------------------------------------------- the month
def monthly_base(inventory: Inventory, contract: Contract, month: Month) -> Decimal:
    policy = contract.policy
    if not isinstance(policy.base, str):
        return policy.base
    total = Decimal(0)
    for node in inventory.nodes():
        if node.monthly_fee is None or not contract.covers(inventory, node.id):
            continue
        starts_before_end = node.commissioned is None or node.commissioned < month.end
        ends_after_start = node.decommissioned is None or node.decommissioned > month.start
        if starts_before_end and ends_after_start:
            total += node.monthly_fee
    return total


def _cap(lost: Decimal, points: Decimal | None) -> Decimal:
    return lost if points is None else min(lost, points)


def _fmt_rate(rate: Fraction) -> str:
    return f"{float(rate) * 100:.4f}%"


def online_points_lost(rate: Fraction, policy: Policy) -> Decimal:
    """The online-rate item (SPEC §5): below ``target`` lose ``ceil((target - rate) x 100)`` points, exactly;
    below ``floor`` all of the item's points."""
    points = policy.item_points["online"]
    if rate < Fraction(policy.online_floor):
        return points or Decimal(0)
    target = Fraction(policy.online_target)
    if rate < target:
        return _cap(Decimal(math.ceil((target - rate) * 100)), points)
    return Decimal(0)


def assess(inventory: Inventory, contract: Contract, history: History, month: Month) -> Assessment:
    """The month's assessment for ``contract`` from everything known at ``history.as_of``."""
    policy = contract.policy
    as_of = history.as_of
    window = (month.start, min(month.end, max(as_of, month.start)))
    in_month = [i for i in history.incidents if month.start <= i.start < month.end]
    maintenance = MaintenanceIndex(inventory, history.maintenance)
    judged = verdicts(inventory, history, maintenance)
    scores = tuple(score_incident(inventory, policy, i, judged[i.id], as_of) for i in in_month)
    # One set of excluded incidents (approved exclusion or maintenance), whatever month they started in.
    excluded = excluded_ids(judged)
    per_channel = channel_seconds(inventory, history, window, excluded, maintenance)
    total = sum(per_channel.values(), Seconds())
    areas: dict[str, Seconds] = {}
    circuits: dict[str, Seconds] = {}
    for pos, secs in per_channel.items():
        node = inventory.channels[pos].node
        area = inventory.area_of(node)
        areas[area] = areas.get(area, Seconds()) + secs
        circuit = inventory.circuit_of(node)
        if circuit is not None:
            circuits[circuit] = circuits.get(circuit, Seconds()) + secs
    breaches = tuple(claim_breaches(inventory, policy, history, month, excluded, maintenance))
    findings = tuple(f for f in history.findings if month.start <= f.at < month.end and f.at <= as_of)
    found: dict[str, Decimal] = {}
    for f in findings:
        found[f.item] = found.get(f.item, Decimal(0)) + f.points

    pts = policy.item_points
    rate = total.rate
    target, floor = Fraction(policy.online_target), Fraction(policy.online_floor)  # named in the item's details
    online_lost = online_points_lost(rate, policy)
    response_sum = sum(s.response_lost for s in scores)
    recovery_sum = sum(s.recovery_lost for s in scores)
    unexplained_sum = sum(s.unexplained_lost for s in scores)
    claim_lost = policy.claim_points * len(breaches)
    items: list[Item] = []

    def item(key: str, lost: Decimal, details: str) -> None:
        en, zh = ITEM_TITLES[key]
        items.append(Item(key, en, zh, pts[key], _cap(lost, pts[key]), details))

    scored = [s for s in scores if not s.excluded and s.incident.level in (1, 2, 3)]
    item("response", Decimal(response_sum), f"{len(scored)} scored incidents; {response_sum} points before cap")
    item(
        "recovery",
        Decimal(recovery_sum + unexplained_sum),
        f"recovery {recovery_sum} + unexplained long outage {unexplained_sum} points before cap",
    )
    item(
        "online",
        online_lost,
        f"online rate {_fmt_rate(rate)}; target {_fmt_rate(target)}, floor {_fmt_rate(floor)}",
    )
    for key in ("4a", "4b", "4c", "4d"):
        n = sum(1 for f in findings if f.item == key)
        item(key, found.get(key, Decimal(0)), f"{n} findings")
    n4e = sum(1 for f in findings if f.item == "4e")
    item(
        "4e",
        found.get("4e", Decimal(0)) + claim_lost,
        f"{n4e} findings; {len(breaches)} breaches of the {policy.claim_hour}:00 claim rule "
        f"x {policy.claim_points} points",
    )
    item("5", found.get("5", Decimal(0)), f"{sum(1 for f in findings if f.item == '5')} findings")
    score = max(Decimal(0), Decimal(100) - sum((i.lost for i in items), Decimal(0)))
    share = policy.share_for(score)
    base = monthly_base(inventory, contract, month)
    amount = (base * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    active_nodes = _active_nodes(inventory, month)
    first = first_observation(inventory, history)
    named = (*sorted(areas), *sorted(circuits))
    return Assessment(
        contract=contract,
        month=month,
        as_of=as_of,
        channels=sum(1 for p in history.channels if inventory.channels[p].node in active_nodes),
        seconds=total,
        incidents=scores,
        claim_breaches=breaches,
        findings=findings,
        items=tuple(items),
        areas=tuple(sorted(areas.items())),
        circuits=tuple(sorted(circuits.items())),
        score=score,
        share_paid=share,
        base=base,
        amount=amount,
        names=tuple((i, inventory[i].name) for i in named if i in inventory and inventory[i].name),
        first_observation=first,
        observed=observed_us(inventory, history, window, total, first),
    )


def _active_nodes(inventory: Inventory, month: Month) -> set[str]:
    return {
        n.id
        for n in inventory.nodes()
        if n.kind in (NodeKind.CAMERA, NodeKind.NVR)
        and (n.commissioned is None or n.commissioned < month.end)
        and (n.decommissioned is None or n.decommissioned > month.start)
    }


def as_jsonable(value: Any) -> Any:
    """Numbers for the report: a whole Fraction/Decimal as int, else float (channel-seconds, durations)."""
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
