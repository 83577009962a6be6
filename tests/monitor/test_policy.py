"""Policy settings: defaults match CONTRACT.md / SPEC, and every bad setting is refused with an exact error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import PolicyError
from monitor.policy import DEFAULT_POLICY, HOUR, LevelRule, Policy, load_policy, policy_from_mapping

# (mapping given, exact str(error) when read with where="p.yaml")
BAD_MAPPINGS: list[tuple[Any, str]] = [
    ([], "p.yaml: a policy is a mapping of settings"),
    ("x", "p.yaml: a policy is a mapping of settings"),
    ({"nope": 1}, "p.yaml: field 'nope': unknown setting"),
    ({1: 2}, "p.yaml: field '1': unknown setting"),
    ({"name": ""}, "p.yaml: field 'name': must not be empty"),
    ({"name": 3}, "p.yaml: field 'name': expected a string, got 3"),
    ({"name": None}, "p.yaml: field 'name': expected a string, got None"),
    ({"timezone": "Mars/Base"}, "p.yaml: field 'timezone': 'Mars/Base' is not an IANA time zone"),
    ({"timezone": ""}, "p.yaml: field 'timezone': '' is not an IANA time zone"),
    ({"timezone": "../etc"}, "p.yaml: field 'timezone': '../etc' is not an IANA time zone"),
    ({"window_s": -1}, "p.yaml: field 'window_s': must not be negative"),
    ({"window_s": 1.5}, "p.yaml: field 'window_s': expected a whole number, got 1.5"),
    ({"window_s": True}, "p.yaml: field 'window_s': expected a whole number, got True"),
    ({"level_thresholds": [6, 10, 20]}, "p.yaml: field 'level_thresholds': must be three decreasing positive counts"),
    ({"level_thresholds": [20, 10, 10]}, "p.yaml: field 'level_thresholds': must be three decreasing positive counts"),
    ({"level_thresholds": [20, 10, 0]}, "p.yaml: field 'level_thresholds': must be three decreasing positive counts"),
    ({"level_thresholds": [20, 10]}, "p.yaml: field 'level_thresholds': expected a list of three counts"),
    ({"level_thresholds": "a"}, "p.yaml: field 'level_thresholds': expected a list of three counts"),
    ({"levels": []}, "p.yaml: field 'levels': expected a mapping of level to limits"),
    ({"levels": {4: {}}}, "p.yaml: field 'levels.4': levels are 1, 2, 3, each a mapping"),
    ({"levels": {True: {}}}, "p.yaml: field 'levels.True': levels are 1, 2, 3, each a mapping"),
    ({"levels": {1: 5}}, "p.yaml: field 'levels.1': levels are 1, 2, 3, each a mapping"),
    ({"levels": {1: {"x": 1}}}, "p.yaml: field 'levels.1.x': unknown setting"),
    (
        {"levels": {1: {"response_limit_s": 0}}},
        "p.yaml: field 'levels.1.response_limit_s': must be a positive number of seconds",
    ),
    (
        {"levels": {3: {"unexplained_step_s": "4h"}}},
        "p.yaml: field 'levels.3.unexplained_step_s': expected a whole number, got '4h'",
    ),
    ({"online_target": "abc"}, "p.yaml: field 'online_target': expected a number, got 'abc'"),
    ({"online_target": "nan"}, "p.yaml: field 'online_target': expected a finite number, got 'nan'"),
    ({"online_target": "Infinity"}, "p.yaml: field 'online_target': expected a finite number, got 'Infinity'"),
    ({"online_target": 98}, "p.yaml: field 'online_target': need 0 <= online_floor <= online_target <= 1"),
    ({"online_floor": 0.99}, "p.yaml: field 'online_target': need 0 <= online_floor <= online_target <= 1"),
    ({"online_floor": -0.1}, "p.yaml: field 'online_target': need 0 <= online_floor <= online_target <= 1"),
    ({"item_points": []}, "p.yaml: field 'item_points': expected a mapping of item to points"),
    ({"item_points": {"9": 1}}, "p.yaml: field 'item_points.9': unknown item"),
    ({"item_points": {"4a": "x"}}, "p.yaml: field 'item_points.4a': expected a number, got 'x'"),
    ({"item_points": {"4a": -1}}, "p.yaml: field 'item_points.4a': must not be negative"),
    ({"claim_hour": 24}, "p.yaml: field 'claim_hour': must be an hour 0-23"),
    ({"claim_hour": -1}, "p.yaml: field 'claim_hour': must be an hour 0-23"),
    ({"claim_grace_s": -5}, "p.yaml: field 'claim_grace_s': must not be negative"),
    ({"claim_points": -2}, "p.yaml: field 'claim_points': must not be negative"),
    ({"restore_in_county_s": 0}, "p.yaml: field 'restore_in_county_s': must be a positive number of seconds"),
    ({"restore_out_county_s": -1}, "p.yaml: field 'restore_out_county_s': must be a positive number of seconds"),
    ({"share_bands": "x"}, "p.yaml: field 'share_bands': expected a list of {min_score, share}"),
    ({"share_bands": []}, "p.yaml: field 'share_bands': bands must go down in min_score and end at 0"),
    (
        {"share_bands": [{"min_score": 90, "share": 1}]},
        "p.yaml: field 'share_bands': bands must go down in min_score and end at 0",
    ),
    (
        {"share_bands": [{"min_score": 80, "share": 1}, {"min_score": 90, "share": 1}, {"min_score": 0, "share": 1}]},
        "p.yaml: field 'share_bands': bands must go down in min_score and end at 0",
    ),
    (
        {"share_bands": [{"min_score": 90, "share": 1}, {"min_score": 90, "share": 0.9}, {"min_score": 0, "share": 0}]},
        "p.yaml: field 'share_bands': bands must go down in min_score and end at 0",
    ),
    (
        {"share_bands": [{"min_score": 0, "share": 1, "x": 1}]},
        "p.yaml: field 'share_bands[0]': each band is {min_score, share}",
    ),
    ({"share_bands": [{"min_score": 0, "share": "y"}]}, "p.yaml: field 'share_bands[0]': expected a number, got 'y'"),
    (
        {"share_bands": [{"min_score": 0, "share": 1.5}]},
        "p.yaml: field 'share_bands': shares must be fractions 0..1 that do not rise as the score falls",
    ),
    (
        {"share_bands": [{"min_score": 0, "share": -0.5}]},
        "p.yaml: field 'share_bands': shares must be fractions 0..1 that do not rise as the score falls",
    ),
    (
        {"share_bands": [{"min_score": 90, "share": 0.6}, {"min_score": 0, "share": 1}]},
        "p.yaml: field 'share_bands': shares must be fractions 0..1 that do not rise as the score falls",
    ),
    ({"base": "fixed"}, "p.yaml: field 'base': expected a number, got 'fixed'"),
    ({"base": -1}, "p.yaml: field 'base': must not be negative"),
    ({"base": True}, "p.yaml: field 'base': expected a number, got True"),
    ({"base": None}, "p.yaml: field 'base': expected a number, got None"),
    ({"base": "nan"}, "p.yaml: field 'base': expected a finite number, got 'nan'"),
]


@pytest.mark.parametrize(("data", "message"), BAD_MAPPINGS, ids=[str(i) for i in range(len(BAD_MAPPINGS))])
def test_bad_mapping(data: Any, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy_from_mapping(data, where="p.yaml")
    assert str(err.value) == message


# (file content, exact message after the file name)
BAD_FILES: list[tuple[str, str]] = [
    ("window_s: [1\n", ":2: not YAML (expected ',' or ']', but got '<stream end>')"),
    ("- 1\n- 2\n", ": a policy is a mapping of settings"),
    ("0\n", ": a policy is a mapping of settings"),
    ("online_target: 0.98\nonline_flor: 0.9\n", ": field 'online_flor': unknown setting"),
    (
        "levels:\n  2:\n    recovery_step_s: -1\n",
        ": field 'levels.2.recovery_step_s': must be a positive number of seconds",
    ),
    ("item_points:\n  4c: 5\n  5: -1\n", ": field 'item_points.5': must not be negative"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES, ids=[str(i) for i in range(len(BAD_FILES))])
def test_bad_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == f"{path}{message}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nothing\.yaml: cannot read \(No such file or directory\)"):
        load_policy(tmp_path / "nothing.yaml")


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing set\n", encoding="utf-8")
    assert load_policy(path) == DEFAULT_POLICY


def test_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "name: other\ntimezone: UTC\nonline_target: 0.97\nlevels:\n  3:\n    unexplained_step_s: 7200\n"
        "item_points:\n  4c: null\n  5: 12\nbase: 82500\n",
        encoding="utf-8",
    )
    p = load_policy(path)
    assert p.name == "other" and p.timezone == "UTC" and p.online_target == Decimal("0.97")
    assert p.levels[3].unexplained_step_s == 7200 and p.levels[1] == DEFAULT_POLICY.levels[1]
    assert p.item_points["5"] == 12 and p.base == Decimal(82500)
    assert p.hash != DEFAULT_POLICY.hash


def test_defaults_are_the_contracts_reading() -> None:
    p = DEFAULT_POLICY
    assert p.timezone == "Asia/Shanghai" and p.window_s == 300 and p.level_thresholds == (20, 10, 6)
    assert p.levels[1] == LevelRule(4 * HOUR, 1 * HOUR, 4 * HOUR, 2 * HOUR, 8 * HOUR, 4 * HOUR)
    assert p.levels[2] == LevelRule(6 * HOUR, 2 * HOUR, 6 * HOUR, 6 * HOUR, 12 * HOUR, 4 * HOUR)
    assert p.levels[3] == LevelRule(8 * HOUR, 4 * HOUR, 8 * HOUR, 6 * HOUR, 24 * HOUR, 4 * HOUR)
    assert (p.online_target, p.online_floor) == (Decimal("0.98"), Decimal("0.96"))
    assert (p.claim_hour, p.claim_grace_s, p.claim_points) == (11, HOUR, Decimal(2))
    assert (p.restore_in_county_s, p.restore_out_county_s) == (2 * HOUR, 8 * HOUR)
    assert p.item_points == {
        "response": 10,
        "recovery": 20,
        "online": 10,
        "4a": 10,
        "4b": 10,
        "4c": None,
        "4d": None,
        "4e": 30,
        "5": 10,
    }
    assert [(b.min_score, b.share) for b in p.share_bands] == [
        (Decimal(90), Decimal("1.00")),
        (Decimal(80), Decimal("0.90")),
        (Decimal(70), Decimal("0.80")),
        (Decimal(60), Decimal("0.70")),
        (Decimal(0), Decimal("0.60")),
    ]
    assert p.base == "tariff"
    assert [p.level_for(n) for n in (0, 5, 6, 9, 10, 19, 20, 500)] == [0, 0, 3, 3, 2, 2, 1, 1]


def test_hash_is_stable_and_follows_every_setting() -> None:
    assert Policy().hash == DEFAULT_POLICY.hash
    assert policy_from_mapping({"claim_points": 2}).hash == DEFAULT_POLICY.hash  # same value, same hash
    assert policy_from_mapping({"claim_points": 3}).hash != DEFAULT_POLICY.hash
    assert policy_from_mapping({"levels": {"1": {"response_step_s": 1800}}}).levels[1].response_step_s == 1800


def test_the_shipped_policy_file_is_the_default() -> None:
    """deploy/policy.yaml documents the defaults: it must load to exactly the default policy (same hash)."""
    shipped = load_policy(Path(__file__).parents[2] / "deploy" / "policy.yaml")
    assert shipped == DEFAULT_POLICY
    assert shipped.hash == DEFAULT_POLICY.hash


def test_equal_numbers_written_differently_hash_alike() -> None:
    a = policy_from_mapping(
        {"online_target": "0.98", "share_bands": [{"min_score": 90, "share": "1"}, {"min_score": 0, "share": 0.6}]}
    )
    b = policy_from_mapping(
        {
            "online_target": 0.980,
            "share_bands": [{"min_score": "90.0", "share": 1.00}, {"min_score": 0, "share": "0.60"}],
        }
    )
    assert a.hash == b.hash
