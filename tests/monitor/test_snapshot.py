"""Projection snapshots (monitor.snapshot): engines pickled and loaded back continue exactly as the originals, the
key changes with every input the engines depend on, and the bytes cannot name anything but slawatch's classes."""

from __future__ import annotations

import os
import pickle
import random
import zlib
from dataclasses import replace
from datetime import timedelta

import pytest

from monitor import snapshot as snapshot_module
from monitor.assessment import Month, assess
from monitor.confirmation import ConfirmationSettings
from monitor.contracts import default_contract
from monitor.engine import Engine
from monitor.errors import SnapshotError
from monitor.events import Event, parse_event
from monitor.inventory import Inventory
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.snapshot import dump_engines, load_engines, snapshot_key
from monitor.storage.database import Database
from tests.monitor.test_projection import random_stream, small

MONTH = Month.parse("2026-10", DEFAULT_POLICY)


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return sample_inventory()


@pytest.fixture(scope="module")
def events(inventory: Inventory) -> list[Event]:
    raw = month_events(inventory, MONTH.start, days=MONTH.length_days)
    return sorted((parse_event(e, DEFAULT_POLICY.zone) for e in raw), key=lambda e: e.known)


def halves(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """The month cut between two instants near its middle (an instant is never split: one replay takes it)."""
    cut = len(events) // 2
    while events[cut].known == events[cut - 1].known:
        cut += 1
    return events[:cut], events[cut:]


def test_a_loaded_engine_goes_on_as_the_original_and_reports_the_same_month(
    inventory: Inventory, events: list[Event]
) -> None:
    first, second = halves(events)
    original = Engine(inventory, DEFAULT_POLICY)
    original.replay(first)
    data, raw = dump_engines({"default": original}, inventory)
    assert 0 < len(data) < raw  # compressed
    loaded = load_engines(data, inventory, ["default"])["default"]
    assert loaded is not original and loaded.inventory is inventory  # the inventory is put back, not copied
    assert loaded.snapshot(first[-1].known) == original.snapshot(first[-1].known)
    original.replay(second)
    loaded.replay(second)
    assert loaded.snapshot(MONTH.end) == original.snapshot(MONTH.end)
    contract = default_contract()
    assert assess(inventory, contract, loaded.snapshot(MONTH.end), MONTH) == assess(
        inventory, contract, original.snapshot(MONTH.end), MONTH
    )
    assert loaded.incidents and [i.id for i in loaded.incidents] == [i.id for i in original.incidents]


def test_what_changed_since_the_last_store_is_not_in_a_snapshot(inventory: Inventory, events: list[Event]) -> None:
    engine = Engine(inventory, DEFAULT_POLICY)
    engine.replay(events[:200])
    assert engine.changed  # the storing process still has to write these
    data, _raw = dump_engines({"default": engine}, inventory)
    assert engine.changed  # dumping leaves the engine as it was
    assert load_engines(data, inventory, ["default"])["default"].changed == set()


def test_the_key_follows_every_input(inventory: Inventory) -> None:
    contracts = [default_contract()]
    confirmation = ConfirmationSettings()
    key = snapshot_key(inventory, contracts, confirmation)
    assert len(key) == 64 and key == snapshot_key(sample_inventory(), [default_contract()], ConfirmationSettings())
    nodes = inventory.nodes()
    moved = Inventory([*nodes[:-1], replace(nodes[-1], name=nodes[-1].name + " (moved)")])
    stricter = default_contract(replace(DEFAULT_POLICY, window_s=DEFAULT_POLICY.window_s + 60))
    others = {
        "inventory": snapshot_key(moved, contracts, confirmation),
        "contract": snapshot_key(inventory, [stricter], confirmation),
        "confirmation": snapshot_key(inventory, contracts, ConfirmationSettings(down_after=4)),
    }
    assert key not in others.values() and len(set(others.values())) == 3


def test_the_key_follows_the_engine_code(inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    key = snapshot_key(inventory, [default_contract()], ConfirmationSettings())
    monkeypatch.setattr(snapshot_module, "FORMAT", snapshot_module.FORMAT + 1)
    assert snapshot_key(inventory, [default_contract()], ConfirmationSettings()) != key


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (zlib.compress(pickle.dumps(os.system)), "may not name posix.system"),
        (zlib.compress(pickle.dumps(snapshot_module.dump_engines)), "may not name monitor.snapshot.dump_engines"),
        (zlib.compress(pickle.dumps(Database)), "may not name monitor.storage.database.Database"),
        (zlib.compress(pickle.dumps(timedelta(1))), "of another format"),
        (zlib.compress(pickle.dumps({"format": snapshot_module.FORMAT, "engines": {}})), "one engine per contract"),
        (b"not zlib at all", "does not load: error"),
        (zlib.compress(b"\x80\x05truncated"), "does not load"),
    ],
    ids=[
        "os.system",
        "a function of ours",
        "a class that does I/O",
        "another value",
        "no engines",
        "not compressed",
        "truncated",
    ],
)
def test_bytes_that_are_not_a_snapshot_are_refused(inventory: Inventory, payload: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        load_engines(payload, inventory, ["default"])


def test_a_snapshot_of_other_contracts_is_refused(inventory: Inventory, events: list[Event]) -> None:
    engine = Engine(inventory, DEFAULT_POLICY)
    engine.replay(events[:50])
    data, _raw = dump_engines({"default": engine}, inventory)
    with pytest.raises(SnapshotError, match="one engine per contract"):
        load_engines(data, inventory, ["default", "C-2"])


@pytest.mark.parametrize("seed", range(25))
def test_random_streams_cut_anywhere_between_instants_go_on_the_same(seed: int) -> None:
    """Random faults, acks, exclusions and maintenance on a small network (tests.monitor.test_projection): an
    engine dumped and loaded between any two instants, then given the rest, ends as the one never dumped."""
    stream = random_stream(seed)
    network = small()
    instants = sorted({e.known for e in stream})
    rng = random.Random(seed)
    cut_at = instants[rng.randrange(len(instants))]
    before = [e for e in stream if e.known <= cut_at]
    after = [e for e in stream if e.known > cut_at]
    original = Engine(network, DEFAULT_POLICY)
    original.replay(before)
    data, _raw = dump_engines({"default": original}, network)
    loaded = load_engines(data, network, ["default"])["default"]
    original.replay(after)
    loaded.replay(after)
    end = stream[-1].known + timedelta(days=1)
    assert loaded.snapshot(end) == original.snapshot(end)
    assert [i.view(network, 1) for i in loaded.incidents] == [i.view(network, 1) for i in original.incidents]
