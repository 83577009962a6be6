"""Snapshots of the incident projection: the engines turned into bytes and back, and the key they are valid under.

A start used to rebuild the projection by replaying every stored event (about 100 µs per event at 100,000
channels: 55-100 s after a month and three restarts, growing with every restart's ``unknown`` events). With a
snapshot it loads the engines as they stood at a stored position and replays only the events stored after it, so
what a start costs follows what was stored since the last snapshot, not the whole history.

* :func:`snapshot_key`: a digest of everything the engines' state depends on besides the events: this module's
  format, the source of the modules that define the engines and what they hold, the inventory, the contracts'
  terms and the confirmation settings. A snapshot made under another key is never used (the full replay runs).
* :func:`dump_engines` / :func:`load_engines`: pickle (protocol 5) compressed with zlib. The inventory is not in
  the bytes: it is referenced by a persistent id and the current one (equal, by the key) is put back on load.
  Loading admits only the classes of the modules the engines are made of and a few value types of the standard
  library (:class:`_Unpickler`), so the bytes in the database cannot name any other callable; anything wrong with them
  is a :class:`~monitor.errors.SnapshotError`, and the caller replays the events instead.

Pure: no I/O, no clock. Both directions pause the garbage collector: at 100,000 channels loading created
~2 million objects, and the young collections it triggered made it take 4.6 s instead of 0.8 s.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib.util
import io
import pickle
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from monitor.confirmation import ConfirmationSettings
from monitor.contracts import Contract
from monitor.engine import Engine
from monitor.errors import SnapshotError
from monitor.inventory import Inventory, Node

__all__ = ["FORMAT", "dump_engines", "load_engines", "snapshot_key"]

FORMAT = 1
"""Bumped when what a snapshot holds changes in a way the source digest would not show."""

# The modules whose classes an engine holds (or whose code decides what it holds): a change to any of them is a
# change of the key, so a snapshot from older code is replayed, never loaded into newer classes.
_STATE_MODULES = (
    "monitor.channels",
    "monitor.confirmation",
    "monitor.contracts",
    "monitor.engine",
    "monitor.events",
    "monitor.incidents",
    "monitor.inventory",
    "monitor.maintenance",
    "monitor.policy",
    "monitor.snapshot",
)

# Standard-library classes an engine's state holds (times, money, zones); every other global must be a class
# defined in one of slawatch's own modules.
_STDLIB = {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("fractions", "Fraction"),
    ("zoneinfo", "ZoneInfo"),
    ("zoneinfo", "ZoneInfo._unpickle"),
    ("zoneinfo._zoneinfo", "ZoneInfo"),
    ("zoneinfo._zoneinfo", "ZoneInfo._unpickle"),
}

_INVENTORY = "inventory"


@cache
def _code_digest() -> str:
    """sha256 over the source files of :data:`_STATE_MODULES` (read once per process)."""
    h = hashlib.sha256()
    for name in _STATE_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:  # pragma: no cover - the package is installed whole
            raise SnapshotError(f"cannot find the source of {name}")
        with open(spec.origin, "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def snapshot_key(inventory: Inventory, contracts: Sequence[Contract], confirmation: ConfirmationSettings) -> str:
    """The key (64 hex digits) engines built from these are valid under, for this Python and this code.

    The inventory enters by every field of its nodes but their SNMP settings, in one form for equal values
    (:func:`_canonical`): about 0.3 s at 100,000 nodes, so callers on an event loop run this in a worker
    thread."""
    h = hashlib.sha256()
    h.update(f"slawatch-projection-snapshot/{FORMAT}/{sys.version_info[0]}.{sys.version_info[1]}\0".encode())
    h.update(_code_digest().encode() + b"\0")
    h.update(repr(confirmation).encode() + b"\0")
    h.update(repr(tuple(contracts)).encode() + b"\0")  # every field of every term (dataclass reprs)
    for node in inventory.nodes():
        h.update(repr(tuple(_canonical(getattr(node, name)) for name in _NODE_FIELDS)).encode() + b"\n")
    return h.hexdigest()


# Every field of a node but its SNMP settings (which no engine reads; their secrets stay out of the digest).
_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(Node) if f.name != "snmp")


def _canonical(value: object) -> object:
    """One form for equal values: an inventory loaded from the database has its times in UTC and its money as
    stored, the one imported from a file in the file's zone and digits."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.RawIOBase, inventory: Inventory) -> None:
        super().__init__(file, protocol=5)
        self._inventory = inventory

    def persistent_id(self, obj: Any) -> str | None:
        return _INVENTORY if obj is self._inventory else None


class _Unpickler(pickle.Unpickler):
    """Only the classes of :data:`_STATE_MODULES` (pure value and engine classes: none does I/O when made) and the
    standard value types of :data:`_STDLIB`; the inventory given back."""

    def __init__(self, file: io.BytesIO, inventory: Inventory) -> None:
        super().__init__(file)
        self._inventory = inventory

    def persistent_load(self, pid: Any) -> Any:
        if pid != _INVENTORY:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._inventory

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _STDLIB:
            return super().find_class(module, name)
        if module in _STATE_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == module:
                return found
        raise pickle.UnpicklingError(f"a projection snapshot may not name {module}.{name}")


class _Compressing(io.RawIOBase):
    """A write-only file that compresses what the pickler writes as it comes (its frames, ~64 KiB each): the
    whole pickle is never held (40 MB at 100,000 channels, doubled while a buffer grows), only its compressed
    form (8.6 MB)."""

    def __init__(self) -> None:
        super().__init__()
        self._zlib = zlib.compressobj(1)
        self._parts: list[bytes] = []
        self.raw = 0  # bytes written (before compression)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._parts.append(self._zlib.compress(view))
        self.raw += view.nbytes
        return view.nbytes

    def compressed(self) -> bytes:
        self._parts.append(self._zlib.flush())
        out = b"".join(self._parts)
        self._parts = []
        return out


def dump_engines(engines: Mapping[str, Engine], inventory: Inventory) -> tuple[bytes, int]:
    """``(compressed bytes, size before compression)`` of the engines by contract id. Pure, but it reads every
    engine whole: the caller makes sure nothing changes them meanwhile (a worker thread may dump engines that
    are not yet shared; engines in use are dumped on the event loop)."""
    sink = _Compressing()
    with _collector_paused():
        _Pickler(sink, inventory).dump({"format": FORMAT, "engines": dict(engines)})
    return sink.compressed(), sink.raw


def load_engines(data: bytes, inventory: Inventory, contract_ids: Sequence[str]) -> dict[str, Engine]:
    """The engines by contract id from :func:`dump_engines`' bytes, on ``inventory`` (the one they were made on,
    as the key says). :class:`SnapshotError` when the bytes do not decompress, do not unpickle under the
    allowed classes, or do not hold one engine for each of ``contract_ids``."""
    try:
        raw = zlib.decompress(data)
        with _collector_paused():
            loaded = _Unpickler(io.BytesIO(raw), inventory).load()
    except Exception as exc:  # zlib.error, UnpicklingError, and whatever a truncated stream raises
        raise SnapshotError(f"the projection snapshot does not load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
        raise SnapshotError("the projection snapshot is of another format")
    engines = loaded.get("engines")
    if (
        not isinstance(engines, dict)
        or sorted(engines) != sorted(contract_ids)
        or not all(isinstance(e, Engine) and e.inventory is inventory for e in engines.values())
    ):
        raise SnapshotError("the projection snapshot does not hold one engine per contract")
    return engines
