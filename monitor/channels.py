"""The channel-state rule (SPEC §2), in one place for the engine, ``slawatch status`` and the metrics.

A channel's state is decided by the **topmost node on its path (its own node included) that is not up**: down
makes it offline, unknown makes it unknown; with every node on the path up it is online. Outside its own node's
active interval it is inactive, whatever the path. A node with no state is up (SPEC §2: a node is up until its
first event).

    channel_state(inventory, node_id, node_states, at) -> (ChannelState, decisive node or None)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from monitor.events import NodeState
from monitor.inventory import Inventory

__all__ = ["ChannelState", "channel_state"]


class ChannelState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"
    INACTIVE = "inactive"


def channel_state(
    inventory: Inventory, node_id: str, node_states: Mapping[str, NodeState], at: datetime
) -> tuple[ChannelState, str | None]:
    """The state at ``at`` of the channels of ``node_id`` (a camera or NVR) given each node's state
    (``node_states``; a node not in it is up), and the node that decides it: the topmost node on the path that
    is not up, ``None`` when the channel is online or inactive."""
    if not inventory[node_id].active_at(at):
        return ChannelState.INACTIVE, None
    for nid in inventory.path(node_id):
        s = node_states.get(nid, NodeState.UP)
        if s is NodeState.DOWN:
            return ChannelState.OFFLINE, nid
        if s is not NodeState.UP:
            return ChannelState.UNKNOWN, nid
    return ChannelState.ONLINE, None
