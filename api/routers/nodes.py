"""The live state of the network's nodes, as the live service in this process sees it (any valid token).

``GET /nodes`` lists the polled active nodes (``?state=down|unknown|up`` to filter); ``GET /nodes/{node_id}``
gives one node's live state and its SNMP facts timeline (uplink ifOperStatus changes, reboots, SNMP
unavailable/available). A node's SNMP settings are never returned (only whether it has some): no community,
user or key appears in any response.

The live state lives in the process that polls (``slawatch run``). Without one (``slawatch serve``) these
routes answer 503; ``slawatch status`` reads the stored states from any process. The live service reloads
the inventory every ``inventory_refresh_s``, so a node just imported may be 404 for that long.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.errors import ApiError
from api.models import READ, LiveNodeDetail, LiveNodes, problems
from collectors.scheduler import ICMP, Scheduler
from monitor.events import NodeState
from monitor.inventory import Inventory
from monitor.live import LiveService

router = APIRouter(tags=["nodes"])

NO_LIVE = (
    "no live service runs in this process (`slawatch serve` serves the stored data only): the live node "
    "state is served by `slawatch run`; `slawatch status` shows the stored state from any process"
)


def get_live(request: Request) -> LiveService:
    """The live service of this process; 503 without one, or before it loaded the inventory."""
    live: LiveService | None = getattr(request.app.state, "live", None)
    if live is None:
        raise ApiError(503, NO_LIVE)
    if live.inventory is None:
        raise ApiError(503, "the live service is starting: its inventory is not loaded yet")
    return live


Live = Annotated[LiveService, Depends(get_live)]
StateQuery = Annotated[NodeState | None, Query(description="only nodes in this confirmed state")]
LimitQuery = Annotated[int, Query(ge=1, le=100_000, description="at most this many nodes (inventory order)")]


def _inventory(live: LiveService) -> Inventory:
    assert live.inventory is not None  # get_live checked it
    return live.inventory


def _behind(inventory: Inventory, live: LiveService, node_id: str) -> str | None:
    """The topmost ancestor that is not up (the node's channels are attributed to it), if any."""
    for nid in inventory.path(node_id)[:-1]:
        if live.states.get(nid, NodeState.UP) is not NodeState.UP:
            return nid
    return None


@router.get(
    "/nodes",
    summary="Polled nodes and their live state",
    response_model=LiveNodes,
    responses=problems(*READ),
)
async def list_nodes(live: Live, state: StateQuery = None, limit: LimitQuery = 1000) -> dict[str, Any]:
    inventory = _inventory(live)
    now = live.clock()
    t = live.tracked
    rows: list[dict[str, Any]] = []
    total = 0
    for node_id in Scheduler.targets(inventory, now)[ICMP]:
        s = live.states.get(node_id, NodeState.UP)
        if state is not None and s is not state:
            continue
        total += 1
        if len(rows) >= limit:
            continue
        node = inventory[node_id]
        r = t.icmp.get(node_id)
        rows.append(
            {
                "id": node_id,
                "kind": node.kind.value,
                "area": inventory.area_of(node_id),
                "state": s.value,
                "since": t.since[node_id].isoformat() if node_id in t.since else None,
                "last_poll": t.last_result[node_id].isoformat() if node_id in t.last_result else None,
                "ok": None if r is None else r.ok,
                "behind": _behind(inventory, live, node_id),
            }
        )
    return {
        "as_of": now.isoformat(),
        "state": None if state is None else state.value,
        "total": total,
        "truncated": total > len(rows),
        "nodes": rows,
    }


@router.get(
    "/nodes/{node_id}",
    summary="One node's live state and SNMP facts timeline",
    response_model=LiveNodeDetail,
    responses=problems(*READ, 404),
)
async def get_node(live: Live, node_id: str) -> dict[str, Any]:
    inventory = _inventory(live)
    node = inventory.get(node_id)
    if node is None:
        raise ApiError(404, f"no node {node_id!r} in the inventory", where="path", field="node_id")
    now = live.clock()
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
        "behind": _behind(inventory, live, node.id),
        "as_of": now.isoformat(),
        **live.node_snapshot(node.id),
    }
