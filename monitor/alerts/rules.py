"""Alert rules as data, and the pure planner that turns incident changes (and the passing of time) into messages.

Rules live in a YAML file (``SLAWATCH_ALERT_RULES_FILE``), read by :func:`load_rules`; every error names the
field. Example::

    levels: [1, 2, 3]                  # incident levels that alert (0, a fault, only if listed)
    notify: [opened, level, ack, onsite, resolved]   # what the escalated roles hear besides steps and repeats
    repeat_every_s: 1800               # until acknowledged; 0: never
    quiet_hours: {start: "22:00", end: "07:00", timezone: Asia/Shanghai}   # never for level 1
    escalation:                        # per level: each step names a role, after a delay from the start
      1: [{role: crew, after_s: 0}, {role: supervisor, after_response: 0.5}, {role: manager, after_response: 1}]
      2: [{role: crew, after_s: 0}, {role: supervisor, after_response: 0.5}]
      3: [{role: crew, after_s: 0}]
    routes:                            # the deepest route whose ``under`` is on the incident's scope path wins;
      - {under: T01, roles: {crew: [wecom-t01]}}   # roles it names replace the default's, its always add to them
    default_route: {roles: {crew: [wecom-all], supervisor: [dingtalk-sup], manager: [feishu-mgr]},
                    always: [mqtt, alertmanager, hook]}
    targets:                           # where messages go (URLs and secrets are configuration)
      mqtt: {kind: mqtt, url: "mqtt://127.0.0.1:1883", expiry_s: 3600}
      wecom-all: {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", mentions: ["13800000000"]}
      wecom-t01: {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K1"}
      dingtalk-sup: {kind: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=T", secret_env: DING_SEC,
                     mentions: ["13900000000"]}
      feishu-mgr: {kind: feishu, url: "https://open.feishu.cn/open-apis/bot/v2/hook/H", secret_env: FEISHU_SEC,
                   mentions: ["ou_manager_open_id"]}
      alertmanager: {kind: alertmanager, url: "http://127.0.0.1:9093"}
      hook: {kind: webhook, url: "http://127.0.0.1:9000/slawatch", secret_env: HOOK_SEC}
      mail-noc: {kind: apprise, url: "mailtos://alerts:{secret}@smtp.example.com?to=noc@example.com",
                 secret_env: SMTP_PASS}

``apprise`` targets reach the long tail (email, SMS gateways, Telegram, ...) through apprise
(https://github.com/caronc/apprise): ``url`` is any apprise URL (``mailto://``, ``tgram://BOT_TOKEN/CHAT_ID``,
``json://host:port/path`` for a generic JSON webhook, ...), checked when the rules are loaded (nothing is
contacted then); ``{secret}`` in it is replaced by the target's secret, so credentials may stay in the
environment. They get the robots' title and bilingual markdown body, and observe quiet hours by default, as
people read them; apprise's own failure (an answer refused, a host unreachable) is a failed delivery.
``after_response`` is a fraction of the level's response limit (the contract policy's ``response_limit_s``).
A role's targets hear the kinds in ``notify``, repeats and their own step, from the step that engaged it on
(acknowledgement stops steps and repeats); ``always``
targets (machines: MQTT, Alertmanager, a webhook) hear every message of every alerted incident.

Planning (:func:`plan_change`, :func:`plan_due`) is pure: it compares an incident's current facts with the
:class:`AlertState` last planned for it, so a repeated call plans nothing new, and a missed call (a crash after
the events were stored) is made good by the next one. Quiet hours defer a message to a target that observes
them (robots by default) to their end, and drop repeats inside them; they never apply to level 1.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from monitor.errors import PolicyError
from monitor.events import format_time, parse_time

__all__ = [
    "KINDS",
    "AlertRules",
    "AlertState",
    "IncidentFacts",
    "Kind",
    "LinkMaker",
    "PlannedAlert",
    "QuietHours",
    "Route",
    "Step",
    "Target",
    "TargetKind",
    "load_rules",
    "payload",
    "plan_change",
    "plan_due",
    "rules_from_mapping",
]


class Kind(StrEnum):
    OPENED = "opened"
    LEVEL = "level"
    ESCALATION = "escalation"
    REPEAT = "repeat"
    ACK = "ack"
    ONSITE = "onsite"
    RESOLVED = "resolved"


#: The kinds ``notify`` may name (escalation steps and repeats have their own settings).
KINDS = (Kind.OPENED, Kind.LEVEL, Kind.ACK, Kind.ONSITE, Kind.RESOLVED)


class TargetKind(StrEnum):
    MQTT = "mqtt"
    WEBHOOK = "webhook"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    ALERTMANAGER = "alertmanager"
    APPRISE = "apprise"


#: Targets read by people on phones: they observe quiet hours unless told otherwise.
HUMAN_KINDS = frozenset({TargetKind.WECOM, TargetKind.DINGTALK, TargetKind.FEISHU, TargetKind.APPRISE})


@dataclass(frozen=True, slots=True)
class Target:
    """One destination. ``secret`` signs (webhook HMAC, DingTalk/Feishu ``sign``; apprise: fills ``{secret}`` in
    the URL); ``mentions`` are the on-call
    phone numbers (WeCom, DingTalk) or user ids (Feishu) to ``@``; ``expiry_s`` is the MQTT message expiry."""

    name: str
    kind: TargetKind
    url: str
    secret: str | None = None
    mentions: tuple[str, ...] = ()
    quiet_hours: bool = False
    expiry_s: int = 3600


@dataclass(frozen=True, slots=True)
class Step:
    """An escalation step: ``role`` is engaged ``after_s`` seconds after the start, or ``after_response`` times
    the level's response limit."""

    role: str
    after_s: int | None = None
    after_response: float | None = None

    def delay(self, response_limit_s: int | None) -> timedelta:
        if self.after_s is not None:
            return timedelta(seconds=self.after_s)
        assert self.after_response is not None
        return timedelta(seconds=self.after_response * (response_limit_s or 0))


@dataclass(frozen=True, slots=True)
class Route:
    """Who hears an incident: the targets of each role, and ``always`` (every message). ``under`` is a node id:
    the route applies to incidents whose scope is at or under it (``None``: the default route)."""

    under: str | None
    roles: Mapping[str, tuple[str, ...]]
    always: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local ``[start, end)``, across midnight when ``end <= start``."""

    start: time
    end: time
    timezone: str

    def end_if_inside(self, t: datetime) -> datetime | None:
        """The end of the quiet period ``t`` lies in (UTC), or None when ``t`` is not inside one."""
        zone = ZoneInfo(self.timezone)
        local = t.astimezone(zone)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= now < self.end
            day = local.date()
        else:
            inside = now >= self.start or now < self.end
            day = local.date() + timedelta(days=1) if now >= self.start else local.date()
        if not inside:
            return None
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(t.tzinfo)


@dataclass(frozen=True, slots=True)
class AlertRules:
    targets: Mapping[str, Target]
    default_route: Route
    routes: tuple[Route, ...] = ()
    escalation: Mapping[int, tuple[Step, ...]] = field(default_factory=dict)
    levels: frozenset[int] = frozenset({1, 2, 3})
    notify: frozenset[Kind] = frozenset(KINDS)
    repeat_every_s: int = 0
    quiet_hours: QuietHours | None = None

    def route_for(self, path: Sequence[str]) -> Route:
        """The deepest route whose ``under`` is on ``path`` (root's child first), over the default route: its
        roles replace the default's roles of the same name, its ``always`` targets come in addition."""
        best: tuple[int, Route] | None = None
        for route in self.routes:
            if route.under in path:
                depth = path.index(route.under)
                if best is None or depth > best[0]:
                    best = (depth, route)
        if best is None:
            return self.default_route
        route, default = best[1], self.default_route
        return Route(
            route.under,
            {**default.roles, **route.roles},
            tuple(dict.fromkeys((*default.always, *route.always))),
        )


# ---------------------------------------------------------------------------------------------- parsing
def _fail(message: str, fname: str) -> PolicyError:
    return PolicyError(message, field=fname)


def _str_list(value: object, fname: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise _fail("expected a list of strings", fname)
    return tuple(str(v) for v in value)


def _nonneg_int(value: object, fname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(f"expected a whole number >= 0, got {value!r}", fname)
    return value


def _keys(data: Mapping[str, Any], allowed: set[str], fname: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail("unknown setting", f"{fname}.{key}" if fname else str(key))


def _target(name: str, data: object) -> Target:
    fname = f"targets.{name}"
    if not isinstance(data, dict):
        raise _fail("a target is a mapping with kind and url", fname)
    _keys(data, {"kind", "url", "secret", "secret_env", "mentions", "quiet_hours", "expiry_s"}, fname)
    try:
        kind = TargetKind(str(data.get("kind")))
    except ValueError:
        raise _fail(f"one of {', '.join(k.value for k in TargetKind)}", f"{fname}.kind") from None
    url = data.get("url")
    if not isinstance(url, str) or "://" not in url:
        raise _fail("expected a URL", f"{fname}.url")
    secret = data.get("secret")
    if "secret_env" in data:
        env = data["secret_env"]
        if not isinstance(env, str) or env not in os.environ:
            raise _fail(f"environment variable {env!r} is not set", f"{fname}.secret_env")
        secret = os.environ[env]
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise _fail("expected a non-empty string", f"{fname}.secret")
    quiet = data.get("quiet_hours", kind in HUMAN_KINDS)
    if not isinstance(quiet, bool):
        raise _fail("expected true or false", f"{fname}.quiet_hours")
    expiry = _nonneg_int(data.get("expiry_s", 3600), f"{fname}.expiry_s")
    mentions = _str_list(data.get("mentions", []), f"{fname}.mentions")
    target = Target(name, kind, url, secret, mentions, quiet, expiry)
    if kind is TargetKind.APPRISE:
        from monitor.alerts.apprise_sink import check_url  # apprise is imported only when a target needs it

        problem = check_url(target)
        if problem is not None:
            raise _fail(problem, f"{fname}.url")
    return target


def _route(data: object, fname: str, targets: Mapping[str, Target], *, default: bool) -> Route:
    if not isinstance(data, dict):
        raise _fail("a route is a mapping of roles and always", fname)
    _keys(data, {"roles", "always"} if default else {"under", "roles", "always"}, fname)
    under = None
    if not default:
        under = data.get("under")
        if not isinstance(under, str) or not under:
            raise _fail("expected a node id", f"{fname}.under")
    roles_raw = data.get("roles", {})
    if not isinstance(roles_raw, dict):
        raise _fail("expected a mapping of role to target names", f"{fname}.roles")
    roles = {str(r): _str_list(v, f"{fname}.roles.{r}") for r, v in roles_raw.items()}
    always = _str_list(data.get("always", []), f"{fname}.always")
    for where, names in [*((f"{fname}.roles.{r}", v) for r, v in roles.items()), (f"{fname}.always", always)]:
        for n in names:
            if n not in targets:
                raise _fail(f"no target named {n!r}", where)
    return Route(under, roles, always)


def _clock(value: object, fname: str) -> time:
    if not isinstance(value, str):
        raise _fail("expected HH:MM", fname)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise _fail(f"expected HH:MM, got {value!r}", fname) from None


def rules_from_mapping(data: object) -> AlertRules:
    """Alert rules from a mapping (a parsed YAML file); :class:`PolicyError` names the field that is wrong."""
    if not isinstance(data, dict):
        raise PolicyError("alert rules are a mapping of settings")
    _keys(
        data,
        {"levels", "notify", "repeat_every_s", "quiet_hours", "escalation", "routes", "default_route", "targets"},
        "",
    )
    targets_raw = data.get("targets", {})
    if not isinstance(targets_raw, dict):
        raise _fail("expected a mapping of name to target", "targets")
    targets = {str(n): _target(str(n), t) for n, t in targets_raw.items()}
    default = _route(data.get("default_route", {}), "default_route", targets, default=True)
    routes_raw = data.get("routes", [])
    if not isinstance(routes_raw, list):
        raise _fail("expected a list of routes", "routes")
    routes = tuple(_route(r, f"routes[{i}]", targets, default=False) for i, r in enumerate(routes_raw))
    levels_raw = data.get("levels", [1, 2, 3])
    if not isinstance(levels_raw, list) or any(v not in (0, 1, 2, 3) or isinstance(v, bool) for v in levels_raw):
        raise _fail("expected a list of levels 0-3", "levels")
    notify_raw = data.get("notify", [k.value for k in KINDS])
    try:
        notify = frozenset(Kind(k) for k in _str_list(notify_raw, "notify"))
    except ValueError:
        raise _fail(f"kinds are {', '.join(KINDS)}", "notify") from None
    if not notify <= set(KINDS):
        raise _fail(f"kinds are {', '.join(KINDS)}", "notify")
    escalation: dict[int, tuple[Step, ...]] = {}
    esc_raw = data.get("escalation", {})
    if not isinstance(esc_raw, dict):
        raise _fail("expected a mapping of level to steps", "escalation")
    for raw_level, steps_raw in esc_raw.items():
        fname = f"escalation.{raw_level}"
        if str(raw_level) not in ("0", "1", "2", "3") or not isinstance(steps_raw, list):
            raise _fail("levels are 0-3, each a list of steps", fname)
        steps = []
        for i, s in enumerate(steps_raw):
            sname = f"{fname}[{i}]"
            if not isinstance(s, dict):
                raise _fail("a step is {role, after_s} or {role, after_response}", sname)
            _keys(s, {"role", "after_s", "after_response"}, sname)
            role = s.get("role")
            if not isinstance(role, str) or not role:
                raise _fail("expected a role name", f"{sname}.role")
            if ("after_s" in s) == ("after_response" in s):
                raise _fail("give exactly one of after_s and after_response", sname)
            if "after_s" in s:
                steps.append(Step(role, after_s=_nonneg_int(s["after_s"], f"{sname}.after_s")))
            else:
                frac = s["after_response"]
                if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac <= 100:
                    raise _fail("expected a fraction of the response limit >= 0", f"{sname}.after_response")
                steps.append(Step(role, after_response=float(frac)))
        escalation[int(raw_level)] = tuple(steps)
    quiet = None
    if data.get("quiet_hours") is not None:
        q = data["quiet_hours"]
        if not isinstance(q, dict):
            raise _fail("expected {start, end, timezone}", "quiet_hours")
        _keys(q, {"start", "end", "timezone"}, "quiet_hours")
        zone = q.get("timezone", "Asia/Shanghai")
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(f"{zone!r} is not an IANA time zone", "quiet_hours.timezone") from None
        start, end = _clock(q.get("start"), "quiet_hours.start"), _clock(q.get("end"), "quiet_hours.end")
        if start == end:
            raise _fail("start and end must differ", "quiet_hours.end")
        quiet = QuietHours(start, end, str(zone))
    return AlertRules(
        targets=targets,
        default_route=default,
        routes=routes,
        escalation=escalation,
        levels=frozenset(int(v) for v in levels_raw),
        notify=notify,
        repeat_every_s=_nonneg_int(data.get("repeat_every_s", 0), "repeat_every_s"),
        quiet_hours=quiet,
    )


def load_rules(path: Path) -> AlertRules:
    """Read a YAML rules file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return rules_from_mapping({} if data is None else data)
    except PolicyError as exc:
        raise PolicyError(exc.message, where=str(path), field=exc.field) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"not YAML ({getattr(exc, 'problem', exc)})", where=str(path)) from None
    except OSError as exc:
        raise PolicyError(f"cannot read ({exc.strerror})", where=str(path)) from None


# ---------------------------------------------------------------------------------------------- planning
def _t(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _parse(value: object, fname: str) -> datetime | None:
    return None if value is None else parse_time(value, None, fname)


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What the planner knows of an incident (built from the projection by the service hook).

    ``path`` is the scope's path (root's child first: ``path[0]`` is the area); ``offline`` the channels offline
    now; the limits come from the contract's policy (None for a fault, level 0)."""

    contract_id: str
    incident_id: str
    scope: str
    path: tuple[str, ...]
    level: int
    peak: int
    offline: int
    start: datetime
    end: datetime | None = None
    ack: datetime | None = None
    ack_by: str | None = None
    onsite: datetime | None = None
    onsite_by: str | None = None
    response_limit_s: int | None = None
    recovery_limit_s: int | None = None
    restore_limit_s: int | None = None
    timezone: str = "UTC"  # the contract's zone, for local times in crew messages

    @property
    def area(self) -> str:
        return self.path[0] if self.path else self.scope

    def to_json(self) -> dict[str, Any]:
        return {
            "contract_id": self.contract_id,
            "incident_id": self.incident_id,
            "scope": self.scope,
            "path": list(self.path),
            "level": self.level,
            "peak": self.peak,
            "offline": self.offline,
            "start": _t(self.start),
            "end": _t(self.end),
            "ack": _t(self.ack),
            "ack_by": self.ack_by,
            "onsite": _t(self.onsite),
            "onsite_by": self.onsite_by,
            "response_limit_s": self.response_limit_s,
            "recovery_limit_s": self.recovery_limit_s,
            "restore_limit_s": self.restore_limit_s,
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncidentFacts:
        start = _parse(data["start"], "start")
        assert start is not None
        return cls(
            contract_id=data["contract_id"],
            incident_id=data["incident_id"],
            scope=data["scope"],
            path=tuple(data["path"]),
            level=data["level"],
            peak=data["peak"],
            offline=data["offline"],
            start=start,
            end=_parse(data.get("end"), "end"),
            ack=_parse(data.get("ack"), "ack"),
            ack_by=data.get("ack_by"),
            onsite=_parse(data.get("onsite"), "onsite"),
            onsite_by=data.get("onsite_by"),
            response_limit_s=data.get("response_limit_s"),
            recovery_limit_s=data.get("recovery_limit_s"),
            restore_limit_s=data.get("restore_limit_s"),
            timezone=data.get("timezone", "UTC"),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """What has been planned for an incident: the facts last seen, the roles engaged, the repeats sent and when
    the next timer (escalation step or repeat) is due (None: none)."""

    facts: IncidentFacts
    engaged: tuple[str, ...] = ()
    repeats: int = 0
    next_repeat: datetime | None = None
    next_due: datetime | None = None

    @property
    def contract_id(self) -> str:
        return self.facts.contract_id

    @property
    def incident_id(self) -> str:
        return self.facts.incident_id

    @property
    def ended(self) -> bool:
        return self.facts.end is not None


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """One message to one target. ``alert_id`` is the same for every target of one alert (receivers drop
    duplicates by it); ``id`` is unique per target; ``due`` is when it may be sent (quiet hours defer it)."""

    id: str
    alert_id: str
    contract_id: str
    incident_id: str
    kind: Kind
    target: str
    due: datetime
    payload: Mapping[str, Any]


#: Links a message carries: (contract id, incident id, now) -> {"ack": url, ...}.
LinkMaker = Callable[[str, str, datetime], Mapping[str, str]]


def _left(start: datetime, limit_s: int | None, now: datetime, done: bool) -> int | None:
    if limit_s is None or done:
        return None
    return int((start + timedelta(seconds=limit_s) - now).total_seconds())


def payload(facts: IncidentFacts, alert_id: str, kind: Kind, now: datetime, extra: Mapping[str, Any],
            links: Mapping[str, str]) -> dict[str, Any]:
    """The JSON every sink formats from: ids, level, scope, channels offline, times, clocks left, links."""
    ended = facts.end is not None
    return {
        "alert_id": alert_id,
        "kind": kind.value,
        "at": format_time(now),
        "contract": facts.contract_id,
        "incident": facts.incident_id,
        "level": facts.level,
        "scope": facts.scope,
        "area": facts.area,
        "channels_offline": facts.offline,
        "peak": facts.peak,
        "start": format_time(facts.start),
        "ack": _t(facts.ack),
        "ack_by": facts.ack_by,
        "onsite": _t(facts.onsite),
        "onsite_by": facts.onsite_by,
        "end": _t(facts.end),
        "open": not ended,
        "timezone": facts.timezone,
        "clocks": {
            "response_left_s": _left(facts.start, facts.response_limit_s, now, facts.ack is not None or ended),
            "recovery_left_s": _left(facts.start, facts.recovery_limit_s, now, ended),
            "restore_left_s": _left(facts.start, facts.restore_limit_s, now, ended),
        },
        "links": dict(links),
        **extra,
    }


def _row_id(alert_id: str, target: str) -> str:
    return hashlib.sha256(f"{alert_id}\n{target}".encode()).hexdigest()[:32]


class _Planner:
    def __init__(self, rules: AlertRules, now: datetime, links: LinkMaker | None) -> None:
        self.rules = rules
        self.now = now
        self.links = links
        self.out: list[PlannedAlert] = []

    def emit(
        self, facts: IncidentFacts, kind: Kind, disc: str, names: Sequence[str], extra: Mapping[str, Any] | None = None
    ) -> None:
        alert_id = f"{facts.contract_id}/{facts.incident_id}/{disc}"
        links = self.links(facts.contract_id, facts.incident_id, self.now) if self.links else {}
        body = payload(facts, alert_id, kind, self.now, extra or {}, links)
        quiet_end = None
        if self.rules.quiet_hours is not None and facts.level != 1:
            quiet_end = self.rules.quiet_hours.end_if_inside(self.now)
        for name in dict.fromkeys(names):
            target = self.rules.targets[name]
            due = self.now
            if quiet_end is not None and target.quiet_hours:
                if kind is Kind.REPEAT:
                    continue  # a repeat inside quiet hours is dropped, not piled up for the morning
                due = quiet_end
            self.out.append(
                PlannedAlert(_row_id(alert_id, name), alert_id, facts.contract_id, facts.incident_id, kind, name,
                             due, body)
            )

    def recipients(self, facts: IncidentFacts, engaged: Sequence[str], kind: Kind) -> list[str]:
        route = self.rules.route_for(facts.path)
        names: list[str] = []
        if kind in self.rules.notify or kind in (Kind.ESCALATION, Kind.REPEAT):
            for role in engaged:
                names.extend(route.roles.get(role, ()))
        names.extend(route.always)
        return names

    def steps(self, facts: IncidentFacts) -> tuple[Step, ...]:
        return self.rules.escalation.get(facts.level, ())

    def due_roles(self, facts: IncidentFacts, engaged: Sequence[str]) -> list[str]:
        """Roles whose step has come (not yet engaged), while unacknowledged and open."""
        if facts.ack is not None or facts.end is not None:
            return []
        out = []
        for step in self.steps(facts):
            came = facts.start + step.delay(facts.response_limit_s) <= self.now
            if came and step.role not in engaged and step.role not in out:
                out.append(step.role)
        return out

    def next_due(self, state: AlertState) -> AlertState:
        facts = state.facts
        if facts.ack is not None or facts.end is not None:
            return replace(state, next_repeat=None, next_due=None)
        times = [
            facts.start + s.delay(facts.response_limit_s) for s in self.steps(facts) if s.role not in state.engaged
        ]
        if state.next_repeat is not None:
            times.append(state.next_repeat)
        return replace(state, next_due=min(times) if times else None)


def _rank(level: int) -> int:
    """Level 1 is the highest; a fault (0) is below level 3."""
    return level or 4


def _first_repeat(rules: AlertRules, now: datetime) -> datetime | None:
    return now + timedelta(seconds=rules.repeat_every_s) if rules.repeat_every_s > 0 else None


def plan_change(
    rules: AlertRules,
    previous: AlertState | None,
    facts: IncidentFacts,
    now: datetime,
    *,
    links: LinkMaker | None = None,
    horizon: timedelta = timedelta(hours=1),
) -> tuple[list[PlannedAlert], AlertState | None]:
    """Messages for an incident whose facts may have changed since ``previous`` (None: never alerted), and the
    new state (None: nothing to keep). Changes are taken in their natural order: opened, level rise,
    acknowledgement, arrival on site, resolution; then any escalation step or repeat that has come due."""
    p = _Planner(rules, now, links)
    if previous is None:
        if facts.level not in rules.levels:
            return [], None
        if facts.end is not None and facts.end < now - horizon:
            return [], None  # history seen for the first time (a rebuild of old events): nobody to call now
        engaged = tuple(p.due_roles(replace(facts, ack=None, end=None), ()))
        state = AlertState(facts, engaged, 0, _first_repeat(rules, now))
        p.emit(facts, Kind.OPENED, "opened", p.recipients(facts, engaged, Kind.OPENED))
        prev_facts = replace(facts, ack=None, onsite=None, end=None)
    else:
        state = previous
        prev_facts = previous.facts
        if previous.ended:
            return [], previous
        state = replace(state, facts=facts)
        if _rank(facts.level) < _rank(prev_facts.level):
            p.emit(facts, Kind.LEVEL, f"level{facts.level}", p.recipients(facts, state.engaged, Kind.LEVEL))
    if facts.ack is not None and prev_facts.ack is None:
        p.emit(facts, Kind.ACK, "ack", p.recipients(facts, state.engaged, Kind.ACK))
        state = replace(state, next_repeat=None)
    if facts.onsite is not None and prev_facts.onsite is None:
        p.emit(facts, Kind.ONSITE, "onsite", p.recipients(facts, state.engaged, Kind.ONSITE))
    if facts.end is not None and prev_facts.end is None:
        p.emit(facts, Kind.RESOLVED, "resolved", p.recipients(facts, state.engaged, Kind.RESOLVED))
        state = replace(state, next_repeat=None)
    more, state = _due(p, state)
    return p.out + more, state


def _due(p: _Planner, state: AlertState) -> tuple[list[PlannedAlert], AlertState]:
    """Escalation steps and the repeat that have come due by ``p.now``; ``p.out`` is left to the caller."""
    before = len(p.out)
    facts = state.facts
    for role in p.due_roles(facts, state.engaged):
        state = replace(state, engaged=(*state.engaged, role))
        route = p.rules.route_for(facts.path)
        p.emit(facts, Kind.ESCALATION, f"esc-{role}", [*route.roles.get(role, ()), *route.always], {"role": role})
    if state.next_repeat is not None and state.next_repeat <= p.now and facts.ack is None and facts.end is None:
        n = state.repeats + 1
        p.emit(facts, Kind.REPEAT, f"repeat{n}", p.recipients(facts, state.engaged, Kind.REPEAT), {"repeat": n})
        state = replace(state, repeats=n, next_repeat=p.now + timedelta(seconds=p.rules.repeat_every_s))
    new = p.out[before:]
    del p.out[before:]
    return new, p.next_due(state)


def plan_due(
    rules: AlertRules, state: AlertState, now: datetime, *, links: LinkMaker | None = None
) -> tuple[list[PlannedAlert], AlertState]:
    """The timers of one incident at ``now``: escalation steps come due and the repeat, if any."""
    return _due(_Planner(rules, now, links), state)
