"""The state of the network's nodes (any valid token).

``GET /nodes`` lists the polled active nodes (``?state=down|unknown|up`` to filter); ``GET /nodes/{node_id}``
gives one node's state and, from the live service, its last poll and SNMP facts timeline (uplink ifOperStatus
changes, reboots, SNMP unavailable/available). A node's SNMP settings are never returned (only whether it has
some): no community, user or key appears in any response.

``source`` says where the state comes from. ``live``: the live service in this process (``slawatch run``).
``stored``: no live service runs here (``slawatch serve``, e.g. beside ``slawatch run --no-api`` in another
process, the layout for a province: the API's requests never wait behind a polling cycle); each node's latest
stored confirmed state, as ``slawatch status`` reads it, with ``collector`` from the collector's heartbeat
(``running``, ``stalled``, ``stopped``, ``never ran``). Last polls, RTTs and SNMP facts live only in the
polling process: stored answers give them as null (facts empty). The live service reloads the inventory every
``inventory_refresh_s``, so a node just imported may be 404 for that long.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import ServiceDep
from api.errors import ApiError
from api.models import READ, LiveNodeDetail, LiveNodes, problems
from collectors.scheduler import ICMP, Scheduler
from monitor.errors import shown
from monitor.events import NodeState
from monitor.inventory import Inventory, Node
from monitor.live import LiveService
from monitor.service import Service
from monitor.status import collector_state
from monitor.storage.heartbeats import latest_state_events, node_states_and_heartbeat, read_heartbeat

router = APIRouter(tags=["nodes"])

STALE_AFTER_S = 30.0  # a running collector whose heartbeat is older is "stalled" (as `slawatch status` says)


def get_live(request: Request) -> LiveService | None:
    """The live service of this process (None: none runs here); 503 while it has not loaded the inventory."""
    live: LiveService | None = getattr(request.app.state, "live", None)
    if live is not None and live.inventory is None:
        raise ApiError(503, "the live service is starting: its inventory is not loaded yet")
    return live


Live = Annotated[LiveService | None, Depends(get_live)]
StateQuery = Annotated[NodeState | None, Query(description="only nodes in this confirmed state")]
LimitQuery = Annotated[int, Query(ge=1, le=100_000, description="at most this many nodes (inventory order)")]


def _inventory(live: LiveService) -> Inventory:
    assert live.inventory is not None  # get_live checked it
    return live.inventory


def _behind(inventory: Inventory, states: Mapping[str, NodeState], node_id: str) -> str | None:
    """The topmost ancestor that is not up (the node's channels are attributed to it), if any."""
    for nid in inventory.path(node_id)[:-1]:
        if states.get(nid, NodeState.UP) is not NodeState.UP:
            return nid
    return None


async def _collector(service: Service, now: datetime) -> str:
    return collector_state(await read_heartbeat(service.db), now, STALE_AFTER_S)


def _row(inventory: Inventory, node_id: str, state: NodeState, since: datetime | None) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": inventory[node_id].kind.value,
        "area": inventory.area_of(node_id),
        "state": state.value,
        "since": since.isoformat() if since is not None else None,
    }


def _unknown_node(node_id: str) -> ApiError:
    return ApiError(404, f"no node {shown(node_id)} in the inventory", where="path", field="node_id")


@router.get(
    "/nodes",
    summary="Polled nodes and their live state",
    response_model=LiveNodes,
    responses=problems(*READ),
)
async def list_nodes(
    live: Live, service: ServiceDep, state: StateQuery = None, limit: LimitQuery = 1000
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    total = 0
    if live is None:  # slawatch serve: the stored confirmed states
        inventory, now = await service.inventory(), service.clock()
        latest = await latest_state_events(service.db)
        states = {n: s for n, (s, _at, _known) in latest.items()}
        for node_id in Scheduler.targets(inventory, now)[ICMP]:
            s = states.get(node_id, NodeState.UP)
            if state is not None and s is not state:
                continue
            total += 1
            if len(rows) < limit:
                since = latest[node_id][1] if node_id in latest else None
                row = _row(inventory, node_id, s, since)
                rows.append(row | {"last_poll": None, "ok": None, "behind": _behind(inventory, states, node_id)})
        extra = {"source": "stored", "collector": await _collector(service, now)}
    else:
        inventory, now, t = _inventory(live), live.clock(), live.tracked
        for node_id in Scheduler.targets(inventory, now)[ICMP]:
            s = live.states.get(node_id, NodeState.UP)
            if state is not None and s is not state:
                continue
            total += 1
            if len(rows) >= limit:
                continue
            r = t.icmp.get(node_id)
            last = t.last_result.get(node_id)
            rows.append(
                _row(inventory, node_id, s, t.since.get(node_id))
                | {
                    "last_poll": last.isoformat() if last is not None else None,
                    "ok": None if r is None else r.ok,
                    "behind": _behind(inventory, live.states, node_id),
                }
            )
        extra = {"source": "live", "collector": "running"}
    return {
        "as_of": now.isoformat(),
        "state": None if state is None else state.value,
        "total": total,
        "truncated": total > len(rows),
        "nodes": rows,
        **extra,
    }


@router.get(
    "/nodes/{node_id}",
    summary="One node's live state and SNMP facts timeline",
    response_model=LiveNodeDetail,
    responses=problems(*READ, 404),
)
async def get_node(live: Live, service: ServiceDep, node_id: str) -> dict[str, Any]:
    if live is None:  # slawatch serve: the stored confirmed states of the node and of its path
        inventory, now = await service.inventory(), service.clock()
        node = inventory.get(node_id)
        if node is None:
            raise _unknown_node(node_id)
        # The path's states and the collector's heartbeat in one read (one transaction: ~1 ms less on SQLite).
        latest, heartbeat = await node_states_and_heartbeat(service.db, inventory.path(node_id))
        states = {n: s for n, (s, _at, _known) in latest.items()}
        state, since = (latest[node_id][0], latest[node_id][1]) if node_id in latest else (NodeState.UP, None)
        view: dict[str, Any] = {
            "state": state.value,
            "since": since.isoformat() if since is not None else None,
            "last_poll": None,
            "ok": None,
            "rtt_ms": None,
            "loss": None,
            "snmp_available": None,
            "facts": [],
            "source": "stored",
            "collector": collector_state(heartbeat, now, STALE_AFTER_S),
        }
        return _detail(inventory, node, now, _behind(inventory, states, node_id)) | view
    inventory = _inventory(live)
    found = inventory.get(node_id)
    if found is None:
        raise _unknown_node(node_id)
    now = live.clock()
    detail = _detail(inventory, found, now, _behind(inventory, live.states, node_id))
    return detail | live.node_snapshot(node_id) | {"source": "live", "collector": "running"}


def _detail(inventory: Inventory, node: Node, now: datetime, behind: str | None) -> dict[str, Any]:
    return {
        "id": node.id,
        "kind": node.kind.value,
        "name": node.name,
        "parent": node.parent,
        "area": inventory.area_of(node.id),
        "circuit": inventory.circuit_of(node.id),
        "address": node.address,
        "polled": node.polled and node.active_at(now),
        "snmp_configured": node.snmp is not None,  # the settings themselves (credentials) are never returned
        "behind": behind,
        "as_of": now.isoformat(),
    }
