"""Live equals replay (issue "one number, live or replayed"): a live lab run with several faults on the wire,
its stored event stream exported with the time each event became known, replayed into a fresh database, gives
the identical report, field by field, and the identical stored incidents.

The live run is the production loop (:class:`~monitor.live.LiveService`) on real ICMP over loopback, with
faults made by nftables drops (see ``tests/test_live.py`` for the wire helpers): a CPE failing alone, a camera
failing, a whole fibre branch cut, an acknowledgement received by the service while an incident is open, and
the collector going blind (its sentinel silenced). Needs root; skipped off CI without it, failing on CI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.contracts import DEFAULT_CONTRACT_ID
from monitor.events import AckEvent, format_time, read_jsonl
from monitor.service import Service
from monitor.storage import Database, default_database_url
from tests.test_live import CONFIRM, SENTINEL, Lab, addresses_under, network, now, wait_for
from tests.test_live import lab_factory as lab_factory  # the fixture, shared

ZONE = ZoneInfo("Asia/Shanghai")


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "generated_at"}


@pytest.mark.net
@pytest.mark.root
async def test_a_live_run_replays_to_the_identical_report(
    lab_factory: Callable[..., Awaitable[Lab]], tmp_path: Path
) -> None:
    inv = network()
    lab = await lab_factory(inv)
    live = await lab.start()
    await wait_for(lab.all_up, 10, "every node up after start")

    async def pause(seconds: float) -> None:
        await asyncio.sleep(seconds)

    # a CPE alone (its 6 cameras behind it), then one camera of another branch: it joins (same township)
    lab.wire.drop(["127.60.1.1"])
    await wait_for(lambda: _open_in(lab, "CPE-1"), 10, "the CPE's incident")
    lab.wire.drop(["127.60.3.11"])
    await wait_for(lambda: _open_in(lab, "T1"), 10, "the camera joining it")
    lab.wire.heal(["127.60.1.1"])
    await pause(2)
    lab.wire.heal(["127.60.3.11"])
    await wait_for(lab.all_up, 10, "everything up again")
    # a fibre branch: both of its CPEs and their cameras; acknowledged while open, as the API would receive it
    branch = addresses_under(inv, "B1")
    lab.wire.drop(branch)
    await wait_for(lambda: _open_in(lab, "B1"), 10, "the branch incident")
    received = now()
    await lab.service.ingest([("api", AckEvent(at=received, node="B1", by="crew-7").received(received))], "api:test")
    await pause(2)
    lab.wire.heal(branch)
    await wait_for(lab.all_up, 10, "everything up again")
    # the collector goes blind: its sentinel stops answering
    lab.wire.drop([SENTINEL])
    await wait_for(lambda: _true(live.last_cycle is not None and live.last_cycle.blind is not None), 10, "blind")
    await pause(1.5)
    lab.wire.heal([SENTINEL])
    await wait_for(lab.all_up, 10, "everything up again after blindness")
    await lab.halt()

    as_of = now()
    month = as_of.astimezone(ZONE).strftime("%Y-%m")
    live_report = (await lab.service.report(month, as_of=as_of)).body
    assert live_report["incidents"], "the run made incidents"
    assert live_report["blind_channel_seconds"] > 0 and live_report["expected_channel_seconds"] > 0
    assert any(i["ack"] is not None for i in live_report["incidents"])
    live_incidents = await lab.incidents()

    # export the stored stream (processing order, every event with its known time) and replay it elsewhere
    stream = tmp_path / "live.jsonl"
    events = await lab.service.repo.load_events()
    stream.write_text(
        "".join(json.dumps(e.to_json() | {"known_at": format_time(e.known)}) + "\n" for e in events),
        encoding="utf-8",
    )
    located = read_jsonl(stream, UTC)
    db = Database(default_database_url(tmp_path / "replayed"))
    await db.connect()
    try:
        await db.upgrade()
        replayed = Service(db, confirmation=CONFIRM, clock=lab.service.clock)
        await replayed.import_inventory(inv)
        result = await replayed.ingest(located, "replay:live.jsonl")
        assert result.stored == len(events) and not result.not_applied
        replay_report = (await replayed.report(month, as_of=as_of)).body
        assert comparable(replay_report) == comparable(live_report)
        assert await replayed.repo.load_incidents(DEFAULT_CONTRACT_ID) == live_incidents
    finally:
        await db.close()


async def _open_in(lab: Lab, scope: str) -> bool:
    return any(i["open"] and i["scope"] == scope for i in await lab.incidents())


async def _true(value: bool) -> bool:
    return value
