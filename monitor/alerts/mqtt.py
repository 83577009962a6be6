"""The MQTT sink (aiomqtt, MQTT 5): one event message per alert, and a retained current state per open incident.

* ``slawatch/v1/incidents/{level}/{scope}`` (no leading slash): the alert's JSON payload, QoS 1, with the MQTT 5
  message expiry of the target (``expiry_s``; 0: none), not retained.
* ``slawatch/v1/state/incidents/{incident id}``: the incident's latest payload, retained, QoS 1, no expiry;
  an empty retained payload clears it when the incident ends.

The client is created inside the running loop on first use and kept; any failure closes it (the next
attempt reconnects) and is raised to the delivery loop, which retries the message: nothing is acknowledged
to the outbox before the broker's PUBACK.
"""

from __future__ import annotations

import json
import os
from contextlib import AsyncExitStack, suppress
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.rules import Target

__all__ = ["MqttSink", "event_topic", "state_topic"]


def event_topic(level: int, scope: str) -> str:
    return f"slawatch/v1/incidents/{level}/{scope}"


def state_topic(incident_id: str) -> str:
    return f"slawatch/v1/state/incidents/{incident_id}"


class MqttSink:
    """Publishes to the broker at the target's URL (``mqtt://[user:password@]host[:port]``)."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        parts = urlsplit(target.url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"target {target.name}: expected mqtt://host[:port], got {target.url!r}")
        self.target = target
        self.host = parts.hostname
        self.port = parts.port or 1883
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None

    async def _connect(self) -> aiomqtt.Client:
        if self._client is None:
            stack = AsyncExitStack()
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self.username,
                password=self.password,
                identifier=f"slawatch-{self.target.name}-{os.getpid()}-{id(self):x}",
                protocol=aiomqtt.ProtocolVersion.V5,
                timeout=self.timeout,
            )
            await stack.enter_async_context(client)
            self._stack, self._client = stack, client
        return self._client

    async def send(self, message: OutboxMessage) -> None:
        payload = message.payload
        try:
            client = await self._connect()
            props = None
            if self.target.expiry_s:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.MessageExpiryInterval = self.target.expiry_s
            body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
            await client.publish(event_topic(payload["level"], payload["scope"]), body, qos=1, properties=props)
            state = body if payload.get("open", True) else b""
            await client.publish(state_topic(message.incident_id), state, qos=1, retain=True)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with suppress(aiomqtt.MqttError):
                await stack.aclose()
