"""Month-to-date figures of one contract, kept up to date from its live :class:`~monitor.engine.Engine`.

The service keeps one engine per contract in memory (its incident projection) and applies every stored event
to it as it arrives. :class:`MonthToDate` reads that engine, never changes it, and keeps what it has already
counted between calls, so that each call only does the work the new events made necessary:

* channel-seconds per channel are accumulated up to the channel's last transition (its "closed" part) and
  extended only by the transitions appended since the previous call; the open part (from the last transition
  to now) is added at each call. Exclusions (maintenance windows, excluded incidents) are taken off exactly
  as :func:`monitor.assessment.channel_seconds` does; when the set of exclusions changes, the closed parts
  are counted again from the month's start (rare: a decision or a maintenance window);
* the 11:00 claim rule's candidates (channels offline at a past claim instant for at least ``claim_grace``)
  are found per channel when its transitions change or a new claim instant passes; whether each candidate is
  a breach (its incident excluded or acknowledged, a maintenance window) is decided at each call, since
  acknowledgements and decisions may come later;
* incidents are scored with :func:`monitor.assessment.score_incident`, a closed incident once per change of
  what its score depends on, an open one at each call.

The figures equal those of :func:`monitor.assessment.assess` as of the call's ``now`` over the same events
(the tests check it), with one difference: an active-interval boundary (a node commissioned or decommissioned
at a time) counts from the next event the engine applies, since reading the engine must not advance it.

Pure: no I/O, no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from monitor.assessment import (
    MaintenanceIndex,
    Month,
    Seconds,
    Span,
    Verdict,
    _cap,
    _merge,
    _overlap_us,
    _us,
    monthly_base,
    online_points_lost,
    score_incident,
    verdict,
)
from monitor.channels import ChannelState
from monitor.contracts import Contract
from monitor.engine import Engine, state_at
from monitor.incidents import Incident
from monitor.inventory import Inventory

__all__ = ["ITEMS", "LEVELS", "ContractFigures", "MonthToDate", "month_at", "next_claim_instant"]

ITEMS = ("response", "recovery", "online", "4a", "4b", "4c", "4d", "4e", "5")
LEVELS = (1, 2, 3, 0)
FINDING_ITEMS = ("4a", "4b", "4c", "4d", "4e", "5")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ContractFigures:
    """One contract's figures as of ``as_of``: the month so far (``seconds``, ``lost`` per item capped at the
    item's points, ``score``, ``share``, ``amount`` if nothing else happens), the 11:00 claim rule (breaches so
    far, channels by area that breach at ``next_claim`` if nothing changes, and the points they would cost) and
    the open incidents by level (count and oldest start)."""

    contract: str
    month: str
    as_of: datetime
    seconds: Seconds
    lost: Mapping[str, Decimal]
    score: Decimal
    share: Decimal
    base: Decimal
    amount: Decimal
    claim_breaches: int
    next_claim: datetime
    at_risk: Mapping[str, int]  # area -> channels that breach at next_claim unless claimed
    at_risk_points: Decimal
    open_by_level: Mapping[int, int]
    oldest_open: Mapping[int, datetime]  # level -> start of its oldest open incident (levels with one only)

    @property
    def online_rate(self) -> Fraction:
        return self.seconds.rate


def month_at(t: datetime, contract: Contract) -> Month:
    """The contract's month (in its time zone) that contains ``t``."""
    local = t.astimezone(contract.policy.zone)
    return Month.parse(f"{local.year:04d}-{local.month:02d}", contract.policy)


def next_claim_instant(t: datetime, contract: Contract) -> datetime:
    """The first claim instant (``claim_hour``:00 in the contract's zone) at or after ``t``, in UTC. A claim
    instant equal to ``t`` is still ahead: the assessment counts only instants before its as-of."""
    zone = contract.policy.zone
    day = t.astimezone(zone).date()
    while True:
        at = datetime.combine(day, time(contract.policy.claim_hour), tzinfo=zone).astimezone(UTC)
        if at >= t:
            return at
        day += timedelta(days=1)


@dataclass(slots=True)
class _Channel:
    """What has been counted of one channel: its transitions up to ``n`` (the last one at ``since``, leaving it
    in ``state``), as channel-seconds in microseconds; ``excluded``: its excluded spans inside the month; the
    claim candidates (instant, start of the offline stretch) over the first ``claim_k`` instants as of ``claim_n``
    transitions."""

    n: int
    since: datetime
    state: ChannelState
    excluded: list[Span]
    online: int = 0
    offline: int = 0
    ex: int = 0
    blind: int = 0
    claim_n: int = -1
    claim_k: int = 0
    candidates: list[datetime] = field(default_factory=list)


class MonthToDate:
    """Month-to-date figures of ``contract`` from ``engine`` (the service's live engine for that contract).

    Holds no reference to anything but the engine and what it counted; a new engine (the service rebuilt its
    projection) or a new month needs a new :class:`MonthToDate` (see :meth:`fits`)."""

    def __init__(self, contract: Contract, engine: Engine, month: Month) -> None:
        self.contract = contract
        self.engine = engine
        self.inventory: Inventory = engine.inventory
        self.policy = contract.policy
        self.month = month
        self.instants = month.claim_instants(self.policy)
        self.base = monthly_base(self.inventory, contract, month)
        self.grace = timedelta(seconds=self.policy.claim_grace_s)
        self._reset()
        self._exclusion_key: tuple[object, ...] | None = None
        self._maintenance: MaintenanceIndex = MaintenanceIndex(self.inventory, ())
        self._maintenance_n = -1
        # channel -> incidents that have held it (in the order they took it), kept as incidents open and grow
        self._held_by: dict[int, list[Incident]] = {}
        self._incidents_seen = 0
        self._watched: dict[str, tuple[Incident, int]] = {}  # open incident -> (it, members indexed)
        self._scores: dict[str, tuple[tuple[object, ...], int, int, int]] = {}  # closed incident -> key, points

    def fits(self, contract: Contract, engine: Engine, now: datetime) -> bool:
        """Whether this tracker still applies: the same engine and contract, and ``now`` inside its month."""
        return engine is self.engine and contract == self.contract and self.month.start <= now < self.month.end

    # ------------------------------------------------------------------ incremental indexes
    def _index_incidents(self, limit: int | None = None) -> bool:
        """Extend the channel -> incidents index with new incidents (at most ``limit`` of them) and new members of
        open ones (only open incidents gain members); True when every incident is indexed."""
        engine = self.engine
        end = len(engine.incidents) if limit is None else min(len(engine.incidents), self._incidents_seen + limit)
        fresh = engine.incidents[self._incidents_seen : end]
        self._incidents_seen = end
        for incident in fresh:
            self._watched.setdefault(incident.id, (incident, 0))
        still: dict[str, tuple[Incident, int]] = {}
        for key, (incident, seen) in self._watched.items():
            members = incident.members
            if len(members) > seen:
                for pos in list(members)[seen:]:
                    self._held_by.setdefault(pos, []).append(incident)
            if incident.end is None:
                still[key] = (incident, len(members))
        self._watched = still
        return end == len(engine.incidents)

    def _maintenance_index(self) -> MaintenanceIndex:
        windows = self.engine.maintenance
        if len(windows) != self._maintenance_n:
            self._maintenance = MaintenanceIndex(self.inventory, windows)
            self._maintenance_n = len(windows)
        return self._maintenance

    def _verdicts(self, now: datetime, maintenance: MaintenanceIndex) -> dict[str, Verdict]:
        """The verdicts that can differ from "scored from its start": incidents with an exclusion step, and
        those that started inside some maintenance window's time (their cover is checked by
        :func:`~monitor.assessment.verdict`)."""
        ranges = _merge((w.start, w.end) for w in maintenance.windows)  # sorted, disjoint
        starts = [a for a, _ in ranges]
        out: dict[str, Verdict] = {}
        for incident in self.engine.incidents:
            if not incident.exclusion:
                if not ranges:
                    continue
                i = bisect.bisect_right(starts, incident.start) - 1  # the one range that may hold its start
                if i < 0 or not incident.start < ranges[i][1]:
                    continue
            view = incident.view(self.inventory, self.policy.level_for(incident.peak))
            out[incident.id] = verdict(self.inventory, view, maintenance, now)
        return out

    def _excluded_at(self, incident: Incident, maintenance: MaintenanceIndex, t: datetime) -> bool:
        view = incident.view(self.inventory, self.policy.level_for(incident.peak))
        return verdict(self.inventory, view, maintenance, t).excluded

    def _excluded_spans(self, pos: int, excluded: Mapping[str, Incident], maintenance: MaintenanceIndex) -> list[Span]:
        node = self.inventory.channels[pos].node
        spans = list(maintenance.spans(node))
        for incident in self._held_by.get(pos, ()):
            if incident.id in excluded:
                for a, b in incident.intervals.get(pos, ()):
                    if a is not None:
                        spans.append((a, b or self.month.end))
        lo, hi = self.month.start, self.month.end
        return [(max(a, lo), min(b, hi)) for a, b in _merge(spans) if b > lo and a < hi]

    # ------------------------------------------------------------------ channel-seconds
    def _start(self, pos: int, excluded: list[Span]) -> _Channel:
        tr = self.engine.transitions[pos]
        lo = self.month.start
        n = bisect.bisect_right(tr, lo, key=lambda h: h[0])
        state = state_at(tr, self.engine.initial[pos], lo)[0]
        return _Channel(n=n, since=lo, state=state, excluded=excluded)

    def _add(self, c: _Channel, a: datetime, b: datetime) -> None:
        """Count ``[a, b)`` (clipped to the month) in ``c.state`` into ``c``."""
        a, b = max(a, self.month.start), min(b, self.month.end)
        if b <= a or c.state is ChannelState.INACTIVE:
            return
        e = _overlap_us(a, b, c.excluded) if c.excluded else 0
        rest = _us(b - a) - e
        c.ex += e
        if c.state is ChannelState.ONLINE:
            c.online += rest
        elif c.state is ChannelState.OFFLINE:
            c.offline += rest
        else:
            c.blind += rest

    def _advance(self, c: _Channel, pos: int, now: datetime) -> None:
        """Count the transitions appended since the last call (those dated by ``now``)."""
        tr = self.engine.transitions[pos]
        while c.n < len(tr):
            at, state = tr[c.n]
            if at > now:
                break
            self._add(c, c.since, at)
            c.since = max(c.since, at)
            c.state = state
            c.n += 1

    def _open_part(self, c: _Channel, now: datetime) -> tuple[int, int, int, int]:
        a, b = max(c.since, self.month.start), min(now, self.month.end)
        if b <= a or c.state is ChannelState.INACTIVE:
            return 0, 0, 0, 0
        e = _overlap_us(a, b, c.excluded) if c.excluded else 0
        rest = _us(b - a) - e
        if c.state is ChannelState.ONLINE:
            return rest, 0, e, 0
        if c.state is ChannelState.OFFLINE:
            return 0, rest, e, 0
        return 0, 0, e, rest

    # ------------------------------------------------------------------ claim rule
    def _candidates(self, c: _Channel, pos: int, past: int) -> None:
        """The past claim instants at which the channel was offline for at least the grace (each with nothing
        else decided yet), over the first ``past`` instants."""
        tr = self.engine.transitions[pos]
        initial = self.engine.initial[pos]
        if c.claim_n != len(tr):
            c.claim_n, c.claim_k, c.candidates = len(tr), 0, []
        for t in self.instants[c.claim_k : past]:
            state, since = state_at(tr, initial, t)
            if state is ChannelState.OFFLINE and since is not None and t - since >= self.grace:
                c.candidates.append(t)
        c.claim_k = max(c.claim_k, past)

    def _held_at(self, pos: int, t: datetime) -> Incident | None:
        for incident in self._held_by.get(pos, ()):
            for a, b in incident.intervals.get(pos, ()):
                if a is not None and a <= t and (b is None or t < b):
                    return incident
        return None

    def _in_maintenance(self, maintenance: MaintenanceIndex, pos: int, t: datetime) -> bool:
        if not maintenance.windows:
            return False
        return any(a <= t < b for a, b in maintenance.spans(self.inventory.channels[pos].node))

    # ------------------------------------------------------------------ the figures
    def _reset(self) -> None:
        """Forget every channel's count (the exclusions changed): each is counted again from the month's start."""
        self._channels: dict[int, _Channel] = {}
        self._closed = [0, 0, 0, 0]  # online, offline, excluded, blind of the closed parts, all channels
        # open parts of the channels without excluded spans, by state: (count, sum of their since in us)
        self._open_n: Counter[ChannelState] = Counter()
        self._open_since: Counter[ChannelState] = Counter()
        self._with_spans: set[int] = set()  # channels with excluded spans: their open part counted one by one
        self._with_candidates: set[int] = set()
        self._warmed = 0  # how many of the engine's channels (in order) :meth:`warm` has been through
        self._warming: tuple[MaintenanceIndex, dict[str, Incident]] | None = None  # what warm() counts with

    def _leave(self, pos: int, c: _Channel) -> None:
        """Take channel ``pos``'s counts out of the totals (before they change)."""
        closed = self._closed
        closed[0] -= c.online
        closed[1] -= c.offline
        closed[2] -= c.ex
        closed[3] -= c.blind
        if pos in self._with_spans:
            self._with_spans.discard(pos)
        elif c.state is not ChannelState.INACTIVE:
            self._open_n[c.state] -= 1
            self._open_since[c.state] -= _us(c.since - EPOCH)

    def _enter(self, pos: int, c: _Channel) -> None:
        """Put channel ``pos``'s counts into the totals."""
        closed = self._closed
        closed[0] += c.online
        closed[1] += c.offline
        closed[2] += c.ex
        closed[3] += c.blind
        if c.excluded:
            self._with_spans.add(pos)
        elif c.state is not ChannelState.INACTIVE:
            self._open_n[c.state] += 1
            self._open_since[c.state] += _us(c.since - EPOCH)
        if c.candidates:
            self._with_candidates.add(pos)
        else:
            self._with_candidates.discard(pos)

    def figures(self, now: datetime) -> ContractFigures:
        """The figures as of ``now`` (inside the tracker's month; see :meth:`fits`).

        Only the channels with new transitions (or, once a day, a new claim instant) are visited one by one;
        the others are in per-state totals (channels with excluded spans, and those with claim candidates,
        are kept in their own small sets)."""
        engine, policy, inventory = self.engine, self.policy, self.inventory
        maintenance, judged, excluded = self._prepare(now)
        excluded_ids = excluded.keys()
        self._count(now, maintenance, excluded, engine.channels)
        next_claim = next_claim_instant(now, self.contract)
        channels, transitions = self._channels, engine.transitions
        # channel-seconds: the closed parts, the open parts by state, the channels with excluded spans
        online, offline, ex, blind = self._closed
        now_us = _us(min(now, self.month.end) - EPOCH)
        online += self._open_n[ChannelState.ONLINE] * now_us - self._open_since[ChannelState.ONLINE]
        offline += self._open_n[ChannelState.OFFLINE] * now_us - self._open_since[ChannelState.OFFLINE]
        blind += self._open_n[ChannelState.UNKNOWN] * now_us - self._open_since[ChannelState.UNKNOWN]
        for pos in self._with_spans:
            o, f, e, b = self._open_part(channels[pos], now)
            online, offline, ex, blind = online + o, offline + f, ex + e, blind + b
        # the claim rule: the candidates so far, and the channels offline now that breach at the next instant
        breaches = 0
        for pos in self._with_candidates:
            for t in channels[pos].candidates:
                if self._in_maintenance(maintenance, pos, t):
                    continue
                held = self._held_at(pos, t)
                if held is None or held.id in excluded_ids or (held.ack is not None and held.ack <= t):
                    continue
                breaches += 1
        # at risk: what the claim rule finds at the next instant if nothing else happens (an open incident's
        # verdict taken at that instant: a planned incident that outlasts its cover by then is scored)
        at_risk: Counter[str] = Counter()
        excluded_then: dict[str, bool] = {}
        for pos, held in engine.member_of.items():
            if pos not in channels or engine.state[pos] is not ChannelState.OFFLINE:
                continue
            tr = transitions[pos]
            since = tr[-1][0] if tr else None
            if since is None or next_claim - since < self.grace:
                continue
            if held.ack is not None and held.ack <= next_claim:
                continue
            if self._in_maintenance(maintenance, pos, next_claim):
                continue
            if held.id not in excluded_then:
                excluded_then[held.id] = held.id in judged and self._excluded_at(held, maintenance, next_claim)
            if not excluded_then[held.id]:
                at_risk[inventory.area_of(inventory.channels[pos].node)] += 1
        seconds = Seconds(online, offline, ex, blind)
        response, recovery = self._incident_points(now, judged)
        lost = self._items(now, seconds, response, recovery, breaches)
        score = max(Decimal(0), Decimal(100) - sum(lost.values(), Decimal(0)))
        share = policy.share_for(score)
        amount = (self.base * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        open_by_level: Counter[int] = Counter()
        oldest: dict[int, datetime] = {}
        for incident in engine.open.values():
            level = policy.level_for(incident.peak)
            open_by_level[level] += 1
            if level not in oldest or incident.start < oldest[level]:
                oldest[level] = incident.start
        return ContractFigures(
            contract=self.contract.id,
            month=self.month.key,
            as_of=now,
            seconds=seconds,
            lost=lost,
            score=score,
            share=share,
            base=self.base,
            amount=amount,
            claim_breaches=breaches,
            next_claim=next_claim,
            at_risk=dict(at_risk),
            at_risk_points=policy.claim_points * sum(at_risk.values()),
            open_by_level={level: open_by_level[level] for level in LEVELS},
            oldest_open=oldest,
        )

    def warm(self, now: datetime, budget: int) -> bool:
        """Count up to ``budget`` channels not counted yet (what the first :meth:`figures` call would do for every
        channel at once: 2.5-4.9 s at 100,000 channels); True when every channel is counted. A caller on an event
        loop calls it between turns (the engine may change in between: :meth:`figures` counts what changed since,
        as it always does), so that no turn holds the loop for the whole month."""
        if self._warmed >= len(self.engine.channels):
            return True
        if not self._index_incidents(budget):  # first the incidents (a month's: 44,000 at 100,000 channels)
            return False
        if self._warming is None:  # then the exclusions once: a change meanwhile makes figures() count again
            maintenance, _judged, excluded = self._prepare(now)
            self._warming = (maintenance, excluded)
        maintenance, excluded = self._warming
        todo = self.engine.channels[self._warmed :]
        chunk = [pos for pos in todo[:budget] if pos not in self._channels]
        self._count(now, maintenance, excluded, chunk)
        self._warmed += min(budget, len(todo))
        return self._warmed >= len(self.engine.channels)

    def _prepare(self, now: datetime) -> tuple[MaintenanceIndex, dict[str, Verdict], dict[str, Incident]]:
        """Bring the indexes up to the engine; the maintenance windows, the verdicts and the excluded incidents
        as of ``now``. When the exclusions changed, every channel is counted again (from the month's start)."""
        engine = self.engine
        self._index_incidents()
        maintenance = self._maintenance_index()
        judged = self._verdicts(now, maintenance)
        excluded = {i: engine.by_id[i] for i, v in judged.items() if v.excluded}
        key = (
            frozenset((i, len(inc.members)) for i, inc in excluded.items()),
            self._maintenance_n,
        )
        if key != self._exclusion_key:  # count every channel again with the new exclusions
            self._reset()
            self._exclusion_key = key
        return maintenance, judged, excluded

    def _count(
        self, now: datetime, maintenance: MaintenanceIndex, excluded: Mapping[str, Incident], positions: Iterable[int]
    ) -> None:
        """Count the channels at ``positions`` up to ``now``: those not counted yet from the month's start, the
        others from their last counted transition (unchanged ones are skipped)."""
        past = bisect.bisect_left(self.instants, now)
        channels, transitions = self._channels, self.engine.transitions
        for pos in positions:
            c = channels.get(pos)
            n = len(transitions[pos])
            if c is not None and c.n == n and c.claim_k >= past and c.claim_n == n:
                continue
            if c is None:
                c = channels[pos] = self._start(pos, self._excluded_spans(pos, excluded, maintenance))
            else:
                self._leave(pos, c)
                if c.n != n:
                    c.excluded = self._excluded_spans(pos, excluded, maintenance)
            self._advance(c, pos, now)
            if c.claim_n != n or c.claim_k < past:
                self._candidates(c, pos, past)
            self._enter(pos, c)

    def _incident_points(self, now: datetime, judged: Mapping[str, Verdict]) -> tuple[int, int]:
        """Response and recovery (with unexplained long outage) points of the month's incidents, before caps.
        A closed incident's score is kept until something it depends on changes."""
        policy, month = self.policy, self.month
        response = recovery = 0
        for incident in self.engine.incidents:
            if not month.start <= incident.start < month.end:
                continue
            level = policy.level_for(incident.peak)
            if level not in (1, 2, 3):
                continue
            v = judged.get(incident.id) or Verdict(incident.start, None)
            explained = any(at <= now for at, _ in incident.explanations)
            key = (incident.end, incident.ack, incident.start, level, v, explained)
            cached = self._scores.get(incident.id)
            if incident.end is not None and cached is not None and cached[0] == key:
                _key, r, rec, unexplained = cached
            else:
                view = incident.view(self.inventory, level)
                s = score_incident(self.inventory, policy, view, v, now)
                r, rec, unexplained = s.response_lost, s.recovery_lost, s.unexplained_lost
                if incident.end is not None:
                    self._scores[incident.id] = (key, r, rec, unexplained)
            response += r
            recovery += rec + unexplained
        return response, recovery

    def _items(
        self, now: datetime, seconds: Seconds, response: int, recovery: int, breaches: int
    ) -> dict[str, Decimal]:
        """Points lost so far by item, each capped at its points (as :func:`~monitor.assessment.assess`)."""
        policy, month = self.policy, self.month
        pts = policy.item_points
        found: dict[str, Decimal] = dict.fromkeys(FINDING_ITEMS, Decimal(0))
        for f in self.engine.findings:
            if month.start <= f.at < month.end and f.at <= now and f.item in found:
                found[f.item] += f.points
        rate = seconds.rate
        online_lost = online_points_lost(rate, policy)
        raw = {
            "response": Decimal(response),
            "recovery": Decimal(recovery),
            "online": online_lost,
            **found,
        }
        raw["4e"] = found["4e"] + policy.claim_points * breaches
        return {k: _cap(raw[k], pts[k]) for k in ITEMS}
