"""A real aiomqtt subscriber and a private mosquitto for the MQTT alert tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

SHARED = ("127.0.0.1", 1883)
START_HINT = "start it with: mosquitto -d -p 1883  (Debian: apt-get install mosquitto; service mosquitto start)"


def broker_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_shared_broker() -> None:
    if broker_up(*SHARED):
        return
    message = f"no MQTT broker at {SHARED[0]}:{SHARED[1]}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; it is required under CI=true. {START_HINT}")
    pytest.skip(f"{message}; {START_HINT}")


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    expiry: int | None

    @property
    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Subscriber:
    messages: list[Received] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self, incident: str) -> list[dict[str, Any]]:
        return [
            m.json for m in self.messages
            if m.topic.startswith("slawatch/v1/incidents/") and m.json.get("incident") == incident
        ]

    async def wait_for(self, incident: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async def enough() -> None:
            while len(self.events(incident)) < count:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.events(incident)


@asynccontextmanager
async def subscribe(host: str, port: int, *topics: str, connect_timeout: float = 10.0) -> AsyncIterator[Subscriber]:
    """A subscriber (QoS 1) to ``topics``, retrying its connection for up to ``connect_timeout`` seconds."""
    sub = Subscriber()
    deadline = asyncio.get_running_loop().time() + connect_timeout
    while True:
        client = aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5, timeout=5)
        try:
            await client.__aenter__()
            break
        except aiomqtt.MqttError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        for topic in topics:
            await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                expiry = getattr(message.properties, "MessageExpiryInterval", None) if message.properties else None
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                sub.messages.append(Received(str(message.topic), payload, message.qos, message.retain, expiry))
                sub.event.set()

        task = asyncio.create_task(collect())
        try:
            yield sub
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    """``mosquitto -c conf`` on a free loopback port: started and stopped by the test that owns it (the
    machine's shared broker is never touched)."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            message = "mosquitto is not installed (apt-get install mosquitto)"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.binary = binary
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(100):
            if broker_up("127.0.0.1", self.port):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the private mosquitto did not start on port {self.port}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 10)
        for _ in range(100):
            if not broker_up("127.0.0.1", self.port):
                return
            await asyncio.sleep(0.05)
