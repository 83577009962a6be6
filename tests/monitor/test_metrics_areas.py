"""Channels by area and state from the projection's engines (``slawatch serve``'s channel family): counted in
bulk, each channel once from the first contract that covers it, as the one-by-one rule gives them."""

from __future__ import annotations

from collections import Counter

from monitor.assessment import Month
from monitor.contracts import Contract, default_contract
from monitor.engine import Engine
from monitor.events import parse_event
from monitor.metrics import Baselines, _engine_channels_by_area
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events


def test_bulk_counts_equal_the_rule_channel_by_channel() -> None:
    inventory = sample_inventory()
    month = Month.parse("2026-10", DEFAULT_POLICY)
    events = sorted((parse_event(e) for e in month_events(inventory, month.start, days=9)), key=lambda e: e.known)
    area = sorted({inventory.area_of(n.id) for n in inventory.nodes()})[1]
    part = Contract(id="C-2", customer="", name="one township", policy=DEFAULT_POLICY, scopes=(area,))
    engines = []
    for contract in (part, default_contract()):  # the part first: its channels are counted from it
        engine = Engine(inventory, contract.policy, contract.channels(inventory))
        engine.replay(events[: len(events) * 2 // 3] if contract is part else events)
        engines.append((contract, engine))
    want: Counter[tuple[str, str]] = Counter()
    seen: set[int] = set()
    for _contract, engine in engines:
        for pos in engine.channels:
            if pos not in seen:
                seen.add(pos)
                want[(inventory.area_of(inventory.channels[pos].node), engine.state[pos].value)] += 1
    baselines = Baselines()
    got = _engine_channels_by_area(engines, baselines)
    assert got == want and sum(got.values()) == len(inventory.channels)
    assert len({state for _area, state in got}) > 1  # not every channel in one state
    assert _engine_channels_by_area(engines, baselines) == want  # the kept areas serve the next scrape
    assert baselines.areas is not None and baselines.areas[0] is inventory
