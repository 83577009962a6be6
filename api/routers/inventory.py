"""The inventory through the API: each node with its state, and an import validated whole (SPEC §1).

    GET  /inventory?kind=&under=&cursor=&limit=   any token  nodes in inventory order (paginated), each with its
                                                             state
    GET  /inventory/{node_id}                     any token  one node, its state and since when, and what its
                                                             channels are attributed to (``behind``)
    POST /inventory?format=csv|yaml|json          admin      the file as the body: validated whole as
                                                             ``slawatch inventory import`` does (every error
                                                             names line and field: 422, nothing stored), then
                                                             written in one transaction; answers what changed

The state is the live service's when one runs in this process (``slawatch run``: ``state_source`` ``live``),
else the last confirmed state stored (``stored``): a node without a state event is up. SNMP settings are never
returned (only whether a node has some). Contracts in a YAML or JSON file must give their policy inline: a
policy file cannot be named over the API (it would be read from the server's disk). The body is bounded by the
setting ``max_body_bytes`` (413 above).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import Caller, Principal, ServiceDep, require
from api.errors import ApiError
from api.models import READ, WRITE, InventoryImport, InventoryNodeDetail, InventoryPage, problems
from api.pagination import decode_cursor, number_cursor, number_key
from monitor.contracts import contract_from_mapping
from monitor.errors import ContractError, shown
from monitor.events import NodeState
from monitor.inventory import Inventory, Node, NodeKind
from monitor.inventory_io import parse_inventory_document
from monitor.live import LiveService
from monitor.service import Service

router = APIRouter(tags=["inventory"])

Admin = Annotated[Caller, Depends(require())]
NodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]{1,64}$")]
SHOWN = 100  # ids listed per kind of change in an import's answer

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the inventory file (UTF-8): CSV, YAML or JSON as ?format= says",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def _state_view(
    request: Request, service: Service
) -> tuple[str, Mapping[str, NodeState], Mapping[str, datetime]]:
    """``(source, states, since)``: the live service's of this process, else the stored ones."""
    live: LiveService | None = getattr(request.app.state, "live", None)
    if live is not None and live.inventory is not None:
        return "live", live.states, live.tracked.since
    return "stored", await service.node_states(), await service.node_since()


def _behind(inventory: Inventory, states: Mapping[str, NodeState], node_id: str) -> str | None:
    """The topmost node on the path that is not up (the node's channels are attributed to it), if any."""
    for nid in inventory.path(node_id):
        if states.get(nid, NodeState.UP) is not NodeState.UP:
            return nid
    return None


def _node(
    node: Node, inventory: Inventory, states: Mapping[str, NodeState], since: Mapping[str, datetime]
) -> dict[str, Any]:
    return {
        "id": node.id,
        "kind": node.kind.value,
        "parent": node.parent,
        "name": node.name,
        "address": node.address,
        "channels": node.channels,
        "bandwidth_mbps": node.bandwidth_mbps,
        "monthly_fee": None if node.monthly_fee is None else str(node.monthly_fee),
        "in_county": node.in_county,
        "commissioned": None if node.commissioned is None else node.commissioned.isoformat(),
        "decommissioned": None if node.decommissioned is None else node.decommissioned.isoformat(),
        "snmp_configured": node.snmp is not None,
        "area": inventory.area_of(node.id),
        "circuit": inventory.circuit_of(node.id),
        "state": states.get(node.id, NodeState.UP).value,
        "since": since[node.id].isoformat() if node.id in since else None,
        "behind": _behind(inventory, states, node.id),
    }


@router.get(
    "/inventory",
    summary="The inventory, each node with its state",
    response_model=InventoryPage,
    responses=problems(*READ),
)
async def list_inventory(
    request: Request,
    service: ServiceDep,
    _caller: Principal,
    kind: Annotated[NodeKind | None, Query(description="only nodes of this kind")] = None,
    under: Annotated[str | None, Query(min_length=1, max_length=64, description="only nodes at or under it")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    inventory = await service.cached_inventory()
    if under is not None and under not in inventory:
        raise ApiError(422, f"node {shown(under)} is not in the inventory", where="query", field="under")
    source, states, since = await _state_view(request, service)
    start = 0 if cursor is None else decode_cursor(cursor, number_key("inventory", 9))
    nodes: list[dict[str, Any]] = []
    position = start
    ids = list(inventory)
    while position < len(ids) and len(nodes) <= limit:
        node = inventory[ids[position]]
        position += 1
        if kind is not None and node.kind is not kind:
            continue
        if under is not None and not inventory.is_at_or_under(node.id, under):
            continue
        nodes.append(_node(node, inventory, states, since))
    more = len(nodes) > limit
    return {
        "state_source": source,
        "nodes": nodes[:limit],
        "limit": limit,
        "next_cursor": number_cursor("inventory", position - 1) if more else None,
    }


@router.get(
    "/inventory/{node_id}",
    summary="One node with its state",
    response_model=InventoryNodeDetail,
    responses=problems(*READ, 404),
)
async def get_inventory_node(
    request: Request, service: ServiceDep, _caller: Principal, node_id: NodePath
) -> dict[str, Any]:
    inventory = await service.cached_inventory()
    node = inventory.get(node_id)
    if node is None:
        raise ApiError(404, f"no node {node_id!r} in the inventory", where="path", field="node_id")
    source, states, since = await _state_view(request, service)
    children = inventory.children.get(node_id, [])
    return {"state_source": source, **_node(node, inventory, states, since), "children": children}


@router.post(
    "/inventory",
    summary="Import an inventory, validated whole (admin)",
    response_model=InventoryImport,
    responses=problems(*WRITE),
    openapi_extra=_BODY_DOC,
)
async def import_inventory(
    request: Request,
    service: ServiceDep,
    caller: Admin,
    fmt: Annotated[Literal["csv", "yaml", "json"], Query(alias="format", description="the file's format")],
) -> dict[str, Any]:
    body = await request.body()
    source = f"request body ({fmt})"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(422, f"not UTF-8 text (byte {exc.start})", where="request body") from None
    if not text.strip():
        raise ApiError(422, "the body is empty: send the inventory file", where="request body")
    inventory, raw = parse_inventory_document(text, fmt, source=source)
    contracts = []
    for c in raw:
        where = f"{source} line {c.get('__line__', 0)}" if isinstance(c, dict) else source
        if isinstance(c, dict) and isinstance(c.get("policy"), str):
            raise ContractError(
                "a policy file cannot be named over the API: give the policy's settings inline",
                where=where,
                field="policy",
            )
        contracts.append(contract_from_mapping(c, where))
    diff = await service.import_inventory(inventory, contracts)
    summary = {"added": len(diff.added), "changed": len(diff.changed), "removed": len(diff.removed)}
    await service.repo.append_audit(
        caller.name, "inventory import", None, {**summary, "nodes": len(inventory), "contracts": len(contracts)}
    )
    return {
        "nodes": len(inventory),
        "contracts": [c.id for c in contracts],
        **summary,
        "ids": {
            "added": list(diff.added[:SHOWN]),
            "changed": list(diff.changed[:SHOWN]),
            "removed": list(diff.removed[:SHOWN]),
        },
    }
