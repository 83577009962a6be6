"""Assessment policy: every number of the monthly assessment (SPEC §3–§5), as data.

A :class:`Policy` is frozen and validated; :func:`load_policy` reads YAML and names the field that is wrong;
:attr:`Policy.hash` is the sha256 of the canonical JSON so that every report can say which rules it used.
The default policy is the contract's reading in ``CONTRACT.md`` with SPEC's defaults.

Units: every duration is in seconds, every rate a fraction (0.98, not 98), points are decimals.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from monitor.errors import PolicyError

HOUR = 3600


@dataclass(frozen=True, slots=True)
class LevelRule:
    """Limits and steps for one incident level (seconds)."""

    response_limit_s: int
    response_step_s: int
    recovery_limit_s: int
    recovery_step_s: int
    unexplained_after_s: int
    unexplained_step_s: int

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise PolicyError("must be a positive number of seconds", field=f.name)


@dataclass(frozen=True, slots=True)
class ShareBand:
    """Paid share for a score at or above ``min_score``."""

    min_score: Decimal
    share: Decimal


def _default_levels() -> dict[int, LevelRule]:
    return {
        1: LevelRule(4 * HOUR, 1 * HOUR, 4 * HOUR, 2 * HOUR, 8 * HOUR, 4 * HOUR),
        2: LevelRule(6 * HOUR, 2 * HOUR, 6 * HOUR, 6 * HOUR, 12 * HOUR, 4 * HOUR),
        3: LevelRule(8 * HOUR, 4 * HOUR, 8 * HOUR, 6 * HOUR, 24 * HOUR, 4 * HOUR),
    }


def _default_bands() -> tuple[ShareBand, ...]:
    return (
        ShareBand(Decimal(90), Decimal("1.00")),
        ShareBand(Decimal(80), Decimal("0.90")),
        ShareBand(Decimal(70), Decimal("0.80")),
        ShareBand(Decimal(60), Decimal("0.70")),
        ShareBand(Decimal(0), Decimal("0.60")),
    )


def _default_item_points() -> dict[str, Decimal | None]:
    # None: no cap of its own (complaints, staffing).
    return {
        "response": Decimal(10),
        "recovery": Decimal(20),
        "online": Decimal(10),
        "4a": Decimal(10),
        "4b": Decimal(10),
        "4c": None,
        "4d": None,
        "4e": Decimal(30),
        "5": Decimal(10),
    }


@dataclass(frozen=True, slots=True)
class Policy:
    """One contract's assessment rules. ``base`` is ``"tariff"`` (sum of monthly fees) or a fixed CNY amount."""

    name: str = "contract-default"
    timezone: str = "Asia/Shanghai"
    level_thresholds: tuple[int, int, int] = (20, 10, 6)  # channels for level 1, 2, 3
    window_s: int = 300
    levels: dict[int, LevelRule] = field(default_factory=_default_levels)
    online_target: Decimal = Decimal("0.98")
    online_floor: Decimal = Decimal("0.96")
    item_points: dict[str, Decimal | None] = field(default_factory=_default_item_points)
    claim_hour: int = 11
    claim_grace_s: int = HOUR
    claim_points: Decimal = Decimal(2)
    restore_in_county_s: int = 2 * HOUR
    restore_out_county_s: int = 8 * HOUR
    share_bands: tuple[ShareBand, ...] = field(default_factory=_default_bands)
    base: str | Decimal = "tariff"

    def __post_init__(self) -> None:
        if not self.name:
            raise PolicyError("must not be empty", field="name")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"{self.timezone!r} is not an IANA time zone", field="timezone") from None
        l1, l2, l3 = self.level_thresholds
        if not l1 > l2 > l3 > 0:
            raise PolicyError("must be three decreasing positive counts", field="level_thresholds")
        if self.window_s < 0:
            raise PolicyError("must not be negative", field="window_s")
        if set(self.levels) != {1, 2, 3}:
            raise PolicyError("must define levels 1, 2 and 3", field="levels")
        if not Decimal(0) <= self.online_floor <= self.online_target <= Decimal(1):
            raise PolicyError("need 0 <= online_floor <= online_target <= 1", field="online_target")
        if set(self.item_points) != set(_default_item_points()):
            raise PolicyError(
                f"must name exactly the items {', '.join(_default_item_points())}", field="item_points"
            )
        for item, pts in self.item_points.items():
            if pts is not None and pts < 0:
                raise PolicyError("must not be negative", field=f"item_points.{item}")
        if not 0 <= self.claim_hour <= 23:
            raise PolicyError("must be an hour 0-23", field="claim_hour")
        if self.claim_grace_s < 0:
            raise PolicyError("must not be negative", field="claim_grace_s")
        if self.claim_points < 0:
            raise PolicyError("must not be negative", field="claim_points")
        for name in ("restore_in_county_s", "restore_out_county_s"):
            if getattr(self, name) <= 0:
                raise PolicyError("must be a positive number of seconds", field=name)
        scores = [b.min_score for b in self.share_bands]
        if not scores or any(a <= b for a, b in pairwise(scores)) or scores[-1] != 0:
            raise PolicyError("bands must go down in min_score and end at 0", field="share_bands")
        shares = [b.share for b in self.share_bands]
        if not all(Decimal(0) <= x <= Decimal(1) for x in shares) or shares != sorted(shares, reverse=True):
            raise PolicyError("shares must be fractions 0..1 that do not rise as the score falls", field="share_bands")
        if isinstance(self.base, str):
            if self.base != "tariff":
                raise PolicyError("must be 'tariff' or a fixed amount", field="base")
        elif self.base < 0:
            raise PolicyError("must not be negative", field="base")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def level_for(self, peak_channels: int) -> int:
        """Incident level for a peak of offline channels: 1, 2, 3, or 0 (a fault)."""
        for level, threshold in zip((1, 2, 3), self.level_thresholds, strict=True):
            if peak_channels >= threshold:
                return level
        return 0

    def share_for(self, score: Decimal) -> Decimal:
        for band in self.share_bands:
            if score >= band.min_score:
                return band.share
        return self.share_bands[-1].share

    def to_json(self) -> dict[str, Any]:
        """Canonical JSON form (numbers as strings where decimal)."""

        def conv(value: Any) -> Any:
            if isinstance(value, Decimal):
                # Canonical: 1, 1.0 and 1.00 are one number, so equal policies hash alike however written.
                return format(value.normalize(), "f")
            if isinstance(value, dict):
                return {str(k): conv(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [conv(v) for v in value]
            return value

        return conv(asdict(self))  # type: ignore[no-any-return]

    @property
    def hash(self) -> str:
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


DEFAULT_POLICY = Policy()


def _dec(value: object, fname: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PolicyError(f"expected a number, got {value!r}", field=fname)
    try:
        out = Decimal(str(value))
    except ArithmeticError:
        raise PolicyError(f"expected a number, got {value!r}", field=fname) from None
    if not out.is_finite():
        raise PolicyError(f"expected a finite number, got {value!r}", field=fname)
    return out


def _int(value: object, fname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"expected a whole number, got {value!r}", field=fname)
    return value


def policy_from_mapping(data: object, where: str | None = None) -> Policy:
    """Build a policy from a mapping; keys left out keep the default. Errors name ``where`` and the field."""
    try:
        return _policy_from_mapping(data)
    except PolicyError as exc:
        raise PolicyError(exc.message, where=where, field=exc.field) from None


def _policy_from_mapping(data: object) -> Policy:
    if not isinstance(data, dict):
        raise PolicyError("a policy is a mapping of settings")
    known = {f.name for f in fields(Policy)}
    for key in data:
        if key not in known:
            raise PolicyError("unknown setting", field=str(key))
    base = DEFAULT_POLICY
    kw: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("name", "timezone"):
            if not isinstance(value, str):
                raise PolicyError(f"expected a string, got {value!r}", field=key)
            kw[key] = value
        elif key in (
            "window_s",
            "claim_hour",
            "claim_grace_s",
            "restore_in_county_s",
            "restore_out_county_s",
        ):
            kw[key] = _int(value, key)
        elif key in ("online_target", "online_floor", "claim_points"):
            kw[key] = _dec(value, key)
        elif key == "level_thresholds":
            if not isinstance(value, list) or len(value) != 3:
                raise PolicyError("expected a list of three counts", field=key)
            kw[key] = tuple(_int(v, key) for v in value)
        elif key == "levels":
            if not isinstance(value, dict):
                raise PolicyError("expected a mapping of level to limits", field=key)
            levels = dict(base.levels)
            for raw_level, rule in value.items():
                fname = f"levels.{raw_level}"
                # Canonical JSON writes mapping keys as strings: "1" is level 1.
                lvl = int(raw_level) if str(raw_level) in ("1", "2", "3") else 0
                if lvl not in (1, 2, 3) or not isinstance(rule, dict):
                    raise PolicyError("levels are 1, 2, 3, each a mapping", field=fname)
                current = asdict(levels[lvl])
                for rk, rv in rule.items():
                    if rk not in current:
                        raise PolicyError("unknown setting", field=f"{fname}.{rk}")
                    current[rk] = _int(rv, f"{fname}.{rk}")
                try:
                    levels[lvl] = LevelRule(**current)
                except PolicyError as exc:
                    raise PolicyError(exc.message, field=f"{fname}.{exc.field}") from None
            kw[key] = levels
        elif key == "item_points":
            if not isinstance(value, dict):
                raise PolicyError("expected a mapping of item to points", field=key)
            points = dict(base.item_points)
            for item, pts in value.items():
                if str(item) not in points:
                    raise PolicyError("unknown item", field=f"item_points.{item}")
                points[str(item)] = None if pts is None else _dec(pts, f"item_points.{item}")
            kw[key] = points
        elif key == "share_bands":
            if not isinstance(value, list):
                raise PolicyError("expected a list of {min_score, share}", field=key)
            bands = []
            for i, band in enumerate(value):
                if not isinstance(band, dict) or set(band) != {"min_score", "share"}:
                    raise PolicyError("each band is {min_score, share}", field=f"share_bands[{i}]")
                bands.append(
                    ShareBand(
                        _dec(band["min_score"], f"share_bands[{i}]"), _dec(band["share"], f"share_bands[{i}]")
                    )
                )
            kw[key] = tuple(bands)
        elif key == "base":
            kw[key] = value if value == "tariff" else _dec(value, key)
    return replace(base, **kw)


def load_policy(path: Path) -> Policy:
    """Read a YAML policy file; unknown or bad settings raise :class:`PolicyError` naming file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise PolicyError(f"not YAML ({getattr(exc, 'problem', exc)})", where=where) from None
    except OSError as exc:
        raise PolicyError(f"cannot read ({exc.strerror})", where=str(path)) from None
    return policy_from_mapping({} if data is None else data, where=str(path))
