"""Inventory files in and out (SPEC §1): CSV, YAML and JSON, validated whole before anything is returned.

Reading
    :func:`load_inventory` / :func:`load_inventory_document` pick the format by extension (``.csv``,
    ``.yaml``/``.yml``, ``.json``); :func:`parse_inventory_document` parses text already in memory (an
    upload). The whole file is checked first; if anything is wrong, nothing is returned and one
    :class:`InventoryImportError` (an :class:`~monitor.errors.InventoryError`) is raised that carries
    **every** problem found, up to :data:`MAX_ERRORS`, sorted by line. Its ``where``/``field``/``message``
    are those of the first problem and ``str()`` shows one problem per line::

        inv.csv:4: field 'address': '127.0.0.300' is not an IPv4 or IPv6 address
        inv.csv:7: field 'id': conflicting duplicate row: id 'CPE-0001' is also on line 3 with different name
        (2 errors)

    ``where`` is ``file:line``: for CSV the physical line of the row's first line (the header is line 1),
    for YAML and JSON the line where the node's mapping/object starts. Field names are the CSV column names;
    in YAML/JSON the SNMP settings are a nested mapping and are named ``snmp.port`` and so on.

CSV columns (only ``id`` and ``kind`` required; any subset in any order; unknown columns are an error)::

    id,kind,parent,name,address,channels,bandwidth_mbps,monthly_fee,in_county,commissioned,decommissioned,
    snmp_version,snmp_community,snmp_user,snmp_auth_protocol,snmp_auth_key,snmp_priv_protocol,snmp_priv_key,
    snmp_port,snmp_uplink_if

YAML/JSON: a top-level mapping ``{nodes: [...], contracts: [...]}``; ``nodes`` is required, each node a
mapping with the CSV keys except that the SNMP columns are a nested ``snmp:`` mapping (``version``,
``community``, ``user``, ``auth_protocol``, ``auth_key``, ``priv_protocol``, ``priv_key``, ``port``,
``uplink_if``). ``contracts`` (optional) is returned untouched as plain Python values (as ``yaml.safe_load``
or ``json.loads`` would give them), each a mapping with its line under ``"__line__"``.

Values: every scalar is read as text and stripped; empty (or YAML/JSON null) means "not given". In YAML the
text of the scalar is used, so ``2026-01-01T00:00:00+08:00`` needs no quotes and ``id: 0042`` keeps its zeros.
``channels`` defaults to 1 for a camera, must be given (>= 1) for an NVR and must be 0/empty for other kinds;
``in_county`` is one of true/false/yes/no/1/0/是/否; times are RFC 3339 with an offset; ``monthly_fee`` is a
decimal (CNY) and ``bandwidth_mbps`` an integer. A node gets :class:`~monitor.inventory.SnmpSettings` when
``snmp_version`` (``2c`` or ``3``) is given; an empty community means the default ``public``, an empty
port 161.
"""

from __future__ import annotations

import bisect
import csv
import io
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml

from monitor.errors import InventoryError, shown
from monitor.inventory import NODE_ID_RE, Inventory, Node, NodeKind, SnmpSettings

__all__ = [
    "CSV_COLUMNS",
    "MAX_ERRORS",
    "NODE_COLUMNS",
    "SNMP_COLUMNS",
    "InventoryDiff",
    "InventoryFormat",
    "InventoryImportError",
    "diff_inventories",
    "dump_inventory",
    "format_for_path",
    "load_inventory",
    "load_inventory_document",
    "parse_inventory_document",
    "parse_rfc3339",
]

InventoryFormat = Literal["csv", "yaml", "json"]

NODE_COLUMNS: tuple[str, ...] = (
    "id",
    "kind",
    "parent",
    "name",
    "address",
    "channels",
    "bandwidth_mbps",
    "monthly_fee",
    "in_county",
    "commissioned",
    "decommissioned",
)
SNMP_KEYS: tuple[str, ...] = (
    "version",
    "community",
    "user",
    "auth_protocol",
    "auth_key",
    "priv_protocol",
    "priv_key",
    "port",
    "uplink_if",
)
SNMP_COLUMNS: tuple[str, ...] = tuple(f"snmp_{k}" for k in SNMP_KEYS)
CSV_COLUMNS: tuple[str, ...] = NODE_COLUMNS + SNMP_COLUMNS
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "kind")
SECRET_KEYS: frozenset[str] = frozenset({"community", "auth_key", "priv_key"})

#: At most this many problems are reported in one :class:`InventoryImportError`.
MAX_ERRORS = 20

_EXTENSIONS: dict[str, InventoryFormat] = {".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_KINDS = ", ".join(k.value for k in NodeKind)
_TRUE = frozenset({"true", "yes", "1", "是"})
_FALSE = frozenset({"false", "no", "0", "否"})
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_DEC_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_TIME_RE = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<frac>\.[0-9]+)?"
    r"(?P<off>[Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)
# libyaml when available: the pure-Python parser takes seconds on a few thousand nodes.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YamlDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_AUTH_PROTOCOLS = frozenset({"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"})
_PRIV_PROTOCOLS = frozenset({"DES", "3DES", "AES", "AES128", "AES192", "AES256"})


# --------------------------------------------------------------------------------------------- errors


class InventoryImportError(InventoryError):
    """Every problem of one inventory file (up to :data:`MAX_ERRORS`), sorted by line.

    ``errors`` holds one :class:`InventoryError` per problem; ``total`` counts all problems found, including
    those left out. ``where``, ``field`` and the first line of ``str()`` are those of the first problem.
    """

    def __init__(self, errors: Sequence[InventoryError], total: int) -> None:
        self.errors = tuple(errors)
        self.total = total
        first = self.errors[0]
        message = first.message
        if len(self.errors) > 1 or total > len(self.errors):
            rest = "".join(f"\n{e}" for e in self.errors[1:])
            more = f", first {len(self.errors)} shown" if total > len(self.errors) else ""
            message = f"{message}{rest}\n({total} errors{more})"
        super().__init__(message, where=first.where, field=first.field)


class _Problems:
    """Collects problems of one file; ``raise_if_any`` raises them together."""

    def __init__(self, source: str, fmt: InventoryFormat) -> None:
        self.source = source
        self.fmt = fmt
        self._items: list[tuple[int, int, InventoryError]] = []

    def __len__(self) -> int:
        return len(self._items)

    def label(self, name: str | None) -> str | None:
        if name is not None and self.fmt != "csv" and name.startswith("snmp_"):
            return "snmp." + name[len("snmp_") :]
        return name

    def add(self, line: int | None, field: str | None, message: str) -> None:
        where = f"{self.source}:{line}" if line else self.source
        error = InventoryError(message, where=where, field=self.label(field))
        self._items.append((line or 0, len(self._items), error))

    def raise_if_any(self) -> None:
        if self._items:
            ordered = [e for _, _, e in sorted(self._items, key=lambda item: (item[0], item[1]))]
            raise InventoryImportError(ordered[:MAX_ERRORS], len(ordered))


# ------------------------------------------------------------------------------------------ raw rows


@dataclass(slots=True)
class _Row:
    """One node as text values keyed by CSV column name (``None``: not given)."""

    line: int
    values: dict[str, str | None]


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# ------------------------------------------------------------------------------------- value parsing


def _parse_int(text: str, *, minimum: int) -> int:
    if not _INT_RE.match(text):
        raise ValueError(f"{text!r} is not an integer")
    value = int(text)
    if value < minimum:
        raise ValueError(f"{value} is less than {minimum}")
    return value


def _parse_decimal(text: str) -> Decimal:
    if not _DEC_RE.match(text):
        raise ValueError(f"{text!r} is not a decimal number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if value < 0:
        raise ValueError(f"{text} is negative")
    return value


def _parse_bool(text: str) -> bool:
    folded = text.lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"{text!r} is not one of true/false/yes/no/1/0/是/否")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time; an offset (``Z`` or ``±hh:mm``) is required."""
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-01-01T00:00:00+08:00")
    off = m.group("off")
    if off is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +08:00)")
    frac = (m.group("frac") or "")[:7]
    iso = f"{m.group('date')}T{m.group('time')}{frac}{'+00:00' if off in ('Z', 'z') else off}"
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid time") from None


def _parse_address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None
    return text


def _node_from_row(row: _Row, problems: _Problems) -> Node | None:
    """Build the node of one row, adding a problem per bad field; ``None`` if anything was wrong."""
    before = len(problems)
    v = row.values

    def bad(field: str, message: str) -> None:
        problems.add(row.line, field, message)

    def convert(field: str, parse: Any) -> Any:
        text = v.get(field)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            bad(field, str(exc))
            return None

    node_id = v.get("id")
    if node_id is None:
        bad("id", "required value is missing")
    elif not NODE_ID_RE.match(node_id):
        bad("id", f"{shown(node_id)} is not a node id (1-64 letters, digits, '.', '_' or '-')")
    kind: NodeKind | None = None
    kind_text = v.get("kind")
    if kind_text is None:
        bad("kind", "required value is missing")
    else:
        try:
            kind = NodeKind(kind_text.lower())
        except ValueError:
            bad("kind", f"{kind_text!r} is not a node kind ({_KINDS})")
    parent = v.get("parent")
    if parent is not None and not NODE_ID_RE.match(parent):
        bad("parent", f"{shown(parent)} is not a node id (1-64 letters, digits, '.', '_' or '-')")
    address = convert("address", _parse_address)
    channels: int | None = convert("channels", lambda t: _parse_int(t, minimum=0))
    if kind is NodeKind.CAMERA and channels is None and v.get("channels") is None:
        channels = 1
    elif kind is NodeKind.NVR and channels is None and v.get("channels") is None:
        bad("channels", "an nvr must state how many channels it records")
    elif kind is NodeKind.NVR and channels == 0:
        bad("channels", "an nvr records at least 1 channel")
    elif kind is not None and kind not in (NodeKind.CAMERA, NodeKind.NVR) and channels:
        bad("channels", f"a {kind.value} node carries no channels (got {channels})")
    bandwidth: int | None = convert("bandwidth_mbps", lambda t: _parse_int(t, minimum=1))
    fee: Decimal | None = convert("monthly_fee", _parse_decimal)
    in_county: bool | None = convert("in_county", _parse_bool)
    commissioned: datetime | None = convert("commissioned", parse_rfc3339)
    decommissioned: datetime | None = convert("decommissioned", parse_rfc3339)
    if commissioned is not None and decommissioned is not None and decommissioned < commissioned:
        bad(
            "decommissioned",
            f"{v['decommissioned']} is before commissioned {v['commissioned']}",
        )
    snmp = _snmp_from_row(row, kind, problems)
    if node_id is not None and parent == node_id:
        return None  # reported as a cycle by the whole-file check
    if len(problems) > before or node_id is None or kind is None:
        return None
    try:
        return Node(
            id=node_id,
            kind=kind,
            parent=parent,
            name=v.get("name") or "",
            address=address,
            channels=channels or 0,
            bandwidth_mbps=bandwidth,
            monthly_fee=fee,
            in_county=in_county,
            commissioned=commissioned,
            decommissioned=decommissioned,
            snmp=snmp,
        )
    except (ValueError, InventoryError) as exc:  # a rule of Node not checked above
        problems.add(row.line, None, str(exc))
        return None


def _snmp_from_row(row: _Row, kind: NodeKind | None, problems: _Problems) -> SnmpSettings | None:
    v = row.values
    given = [c for c in SNMP_COLUMNS if v.get(c) is not None]
    if not given:
        return None
    before = len(problems)

    def bad(field: str, message: str) -> None:
        problems.add(row.line, field, message)

    version = v.get("snmp_version")
    if version is None:
        bad(given[0], "snmp settings need snmp_version ('2c' or '3')")
        return None
    version = version.lower().removeprefix("v")
    if version not in ("2c", "3"):
        bad("snmp_version", f"{v['snmp_version']!r} is not an SNMP version ('2c' or '3')")
        return None
    if kind is not None and kind is not NodeKind.CPE:
        bad("snmp_version", f"snmp settings belong on a cpe, not a {kind.value}")
    port = 161
    if (text := v.get("snmp_port")) is not None:
        try:
            port = _parse_int(text, minimum=1)
            if port > 65535:
                raise ValueError(f"{port} is not a UDP port (1-65535)")
        except ValueError as exc:
            bad("snmp_port", str(exc))
    uplink_if: int | None = None
    if (text := v.get("snmp_uplink_if")) is not None:
        try:
            uplink_if = _parse_int(text, minimum=1)
        except ValueError as exc:
            bad("snmp_uplink_if", str(exc))
    user = v.get("snmp_user")
    auth_protocol = v.get("snmp_auth_protocol")
    priv_protocol = v.get("snmp_priv_protocol")
    auth_key = v.get("snmp_auth_key")
    priv_key = v.get("snmp_priv_key")
    if version == "2c":
        for name in (
            "snmp_user",
            "snmp_auth_protocol",
            "snmp_auth_key",
            "snmp_priv_protocol",
            "snmp_priv_key",
        ):
            if v.get(name) is not None:
                bad(name, "is for SNMP version 3, not 2c")
    else:
        if user is None:
            bad("snmp_user", "snmp version 3 needs a user")
        if auth_protocol is not None:
            auth_protocol = auth_protocol.upper()
            if auth_protocol not in _AUTH_PROTOCOLS:
                bad(
                    "snmp_auth_protocol",
                    f"{auth_protocol!r} is not one of {', '.join(sorted(_AUTH_PROTOCOLS))}",
                )
        if priv_protocol is not None:
            priv_protocol = priv_protocol.upper()
            if priv_protocol not in _PRIV_PROTOCOLS:
                bad(
                    "snmp_priv_protocol",
                    f"{priv_protocol!r} is not one of {', '.join(sorted(_PRIV_PROTOCOLS))}",
                )
            elif auth_protocol is None:
                bad("snmp_priv_protocol", "privacy needs an auth_protocol too")
        for name, key in (("snmp_auth_key", auth_key), ("snmp_priv_key", priv_key)):
            if key is not None and len(key) < 8:
                bad(name, "an SNMPv3 key has at least 8 characters")
    if len(problems) > before:
        return None
    return SnmpSettings(
        version=version,
        community=v.get("snmp_community") or "public",
        user=user,
        auth_protocol=auth_protocol,
        auth_key=auth_key,
        priv_protocol=priv_protocol,
        priv_key=priv_key,
        port=port,
        uplink_if=uplink_if,
    )


# ---------------------------------------------------------------------------------- whole-file checks


def _assemble(rows: Sequence[_Row], problems: _Problems) -> Inventory:
    """Check every row and the rows together; raise all problems, or return the inventory."""
    nodes: list[Node] = []
    first: dict[str, tuple[_Row, Node | None]] = {}
    parents: dict[str, str | None] = {}
    for row in rows:
        node = _node_from_row(row, problems)
        node_id = row.values.get("id")
        if node_id is None or not NODE_ID_RE.match(node_id):
            continue
        if node_id in first:
            _report_duplicate(row, node, *first[node_id], problems)
            continue
        first[node_id] = (row, node)
        parent = row.values.get("parent")
        parents[node_id] = parent if parent is not None and NODE_ID_RE.match(parent) else None
        if node is not None:
            nodes.append(node)
    for node_id, (row, _) in first.items():
        parent = parents[node_id]
        if parent is not None and parent not in parents:
            problems.add(row.line, "parent", f"parent {parent!r} does not exist")
    for cycle in _cycles(parents):
        members = sorted(cycle, key=lambda nid: first[nid][0].line)
        start = cycle.index(members[0])
        ordered = cycle[start:] + cycle[:start]
        chain = " -> ".join([*ordered, ordered[0]])
        problems.add(first[ordered[0]][0].line, "parent", f"cycle: {chain}")
    problems.raise_if_any()
    try:
        return Inventory(nodes)
    except InventoryError as exc:  # pragma: no cover - every Inventory rule is checked above
        problems.add(None, None, exc.message)
        problems.raise_if_any()
        raise


def _report_duplicate(
    row: _Row, node: Node | None, first_row: _Row, first_node: Node | None, problems: _Problems
) -> None:
    node_id = row.values["id"]
    same = (node is not None and node == first_node) or row.values == first_row.values
    if same:
        problems.add(
            row.line, "id", f"duplicate row: id {node_id!r} is also on line {first_row.line} (identical)"
        )
        return
    keys = [k for k in CSV_COLUMNS if row.values.get(k) != first_row.values.get(k)]
    names = ", ".join(problems.label(k) or k for k in keys)
    problems.add(
        row.line,
        "id",
        f"conflicting duplicate row: id {node_id!r} is also on line {first_row.line} with different {names}",
    )


def _cycles(parents: Mapping[str, str | None]) -> list[list[str]]:
    """Every cycle of the parent relation, each as a list of ids in child -> parent order."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    out: list[list[str]] = []
    for start in parents:
        walk: list[str] = []
        current: str | None = start
        while current is not None and current in parents and state.get(current) is None:
            state[current] = 1
            walk.append(current)
            current = parents[current]
        if current is not None and state.get(current) == 1:
            out.append(walk[walk.index(current) :])
        for nid in walk:
            state[nid] = 2
    return out


# ------------------------------------------------------------------------------------------------ CSV


def _rows_from_csv(text: str, problems: _Problems) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        problems.add(
            1, None, f"empty file: expected a header row with at least {', '.join(REQUIRED_COLUMNS)}"
        )
        return []
    except csv.Error as exc:
        problems.add(reader.line_num or 1, None, f"not CSV ({exc})")
        return []
    columns = [c.strip().lower() for c in header]
    seen: set[str] = set()
    for i, col in enumerate(columns, start=1):
        if not col:
            problems.add(1, None, f"column {i} has no name")
        elif col not in CSV_COLUMNS:
            problems.add(1, None, f"unknown column {col!r} (known: {', '.join(CSV_COLUMNS)})")
        elif col in seen:
            problems.add(1, None, f"column {col!r} appears twice")
        seen.add(col)
    for col in REQUIRED_COLUMNS:
        if col not in seen:
            problems.add(1, None, f"missing required column {col!r}")
    if len(problems):
        return []
    rows: list[_Row] = []
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(line, None, f"not CSV ({exc})")
            break
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
            problems.add(line, None, f"row has {len(cells)} cells but the header has {len(columns)} columns")
            continue
        values = {col: _text(cells[i]) if i < len(cells) else None for i, col in enumerate(columns)}
        rows.append(_Row(line, values))
    return rows


# ----------------------------------------------------------------------------------------------- YAML


def _yaml_scalar(node: yaml.Node) -> str | None:
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == "tag:yaml.org,2002:null":
        return None
    return _text(str(node.value))


def _yaml_line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_mapping_pairs(
    node: yaml.MappingNode, problems: _Problems, what: str
) -> list[tuple[str, yaml.Node]]:
    out: list[tuple[str, yaml.Node]] = []
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            problems.add(_yaml_line(key_node), None, f"{what}: keys must be plain names")
            continue
        key = str(key_node.value)
        if key in seen:
            problems.add(_yaml_line(key_node), key, f"{what}: key {key!r} appears twice")
            continue
        seen.add(key)
        out.append((key, value_node))
    return out


def _rows_from_yaml(text: str, problems: _Problems) -> tuple[list[_Row], list[dict[str, Any]]]:
    loader = _YamlLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = int(mark.line) + 1 if mark is not None else None
            problems.add(line, None, f"not YAML ({getattr(exc, 'problem', None) or exc})")
            return [], []
        if root is None or not isinstance(root, yaml.MappingNode):
            line = None if root is None else _yaml_line(root)
            problems.add(line, None, "expected a mapping with a 'nodes' list")
            return [], []
        rows: list[_Row] = []
        contracts: list[dict[str, Any]] = []
        have_nodes = False
        for key, value in _yaml_mapping_pairs(root, problems, "top level"):
            if key == "nodes":
                have_nodes = True
                if not isinstance(value, yaml.SequenceNode):
                    problems.add(_yaml_line(value), None, "'nodes' must be a list of mappings")
                    continue
                for i, item in enumerate(value.value):
                    row = _yaml_node_row(item, i, problems)
                    if row is not None:
                        rows.append(row)
            elif key == "contracts":
                if isinstance(value, yaml.ScalarNode) and _yaml_scalar(value) is None:
                    continue
                if not isinstance(value, yaml.SequenceNode):
                    problems.add(_yaml_line(value), None, "'contracts' must be a list of mappings")
                    continue
                for i, item in enumerate(value.value):
                    if not isinstance(item, yaml.MappingNode):
                        problems.add(_yaml_line(item), None, f"contracts[{i}]: expected a mapping")
                        continue
                    data = loader.construct_document(item)
                    data["__line__"] = _yaml_line(item)
                    contracts.append(data)
            else:
                problems.add(
                    _yaml_line(root), None, f"unknown top-level key {key!r} (known: nodes, contracts)"
                )
        if not have_nodes:
            problems.add(_yaml_line(root), None, "missing required top-level key 'nodes'")
        return rows, contracts
    finally:
        loader.dispose()


def _yaml_node_row(item: yaml.Node, index: int, problems: _Problems) -> _Row | None:
    line = _yaml_line(item)
    if not isinstance(item, yaml.MappingNode):
        problems.add(line, None, f"nodes[{index}]: expected a mapping")
        return None
    values: dict[str, str | None] = {}
    for key, value in _yaml_mapping_pairs(item, problems, f"nodes[{index}]"):
        if key == "snmp":
            if isinstance(value, yaml.ScalarNode) and _yaml_scalar(value) is None:
                continue
            if not isinstance(value, yaml.MappingNode):
                problems.add(line, "snmp", "expected a mapping")
                continue
            for skey, svalue in _yaml_mapping_pairs(value, problems, f"nodes[{index}].snmp"):
                if skey not in SNMP_KEYS:
                    problems.add(line, None, f"unknown key 'snmp.{skey}' (known: {', '.join(SNMP_KEYS)})")
                elif not isinstance(svalue, yaml.ScalarNode):
                    problems.add(line, f"snmp_{skey}", "expected a single value")
                else:
                    values[f"snmp_{skey}"] = _yaml_scalar(svalue)
        elif key not in NODE_COLUMNS:
            problems.add(line, None, f"unknown key {key!r} (known: {', '.join(NODE_COLUMNS)}, snmp)")
        elif not isinstance(value, yaml.ScalarNode):
            problems.add(line, key, "expected a single value")
        else:
            values[key] = _yaml_scalar(value)
    return _Row(line, values)


# ----------------------------------------------------------------------------------------------- JSON


@dataclass(slots=True)
class _JsonObject:
    """A JSON object as parsed: its key/value pairs in order and the line of its ``{``."""

    pairs: list[tuple[str, Any]]
    line: int = 0


_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]', re.DOTALL)


def _json_object_lines(text: str) -> list[int]:
    """Line of each object's ``{``, in the order objects close (the order ``object_pairs_hook`` sees them)."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    stack: list[int] = []
    out: list[int] = []
    for m in _JSON_TOKEN_RE.finditer(text):
        token = m.group()
        if token == "{":
            stack.append(m.start())
        elif token == "}" and stack:
            out.append(bisect.bisect_left(newlines, stack.pop()) + 1)
    return out


def _json_load(text: str) -> Any:
    objects: list[_JsonObject] = []

    def hook(pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = _JsonObject(pairs)
        objects.append(obj)
        return obj

    data = json.loads(text, object_pairs_hook=hook)
    lines = _json_object_lines(text)
    if len(lines) == len(objects):
        for obj, line in zip(objects, lines, strict=True):
            obj.line = line
    return data


def _json_plain(value: Any) -> Any:
    if isinstance(value, _JsonObject):
        return {k: _json_plain(v) for k, v in value.pairs}
    if isinstance(value, list):
        return [_json_plain(v) for v in value]
    return value


def _json_scalar(value: Any) -> str | None:
    """Text of a JSON scalar; raises ``TypeError`` for arrays and objects."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return _text(str(value))
    if isinstance(value, float):
        return repr(value)
    raise TypeError("expected a single value")


def _json_pairs(obj: _JsonObject, problems: _Problems, what: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for key, value in obj.pairs:
        if key in seen:
            problems.add(obj.line or None, key, f"{what}: key {key!r} appears twice")
            continue
        seen.add(key)
        out.append((key, value))
    return out


def _rows_from_json(text: str, problems: _Problems) -> tuple[list[_Row], list[dict[str, Any]]]:
    try:
        root = _json_load(text)
    except json.JSONDecodeError as exc:
        problems.add(exc.lineno, None, f"not JSON ({exc.msg}, column {exc.colno})")
        return [], []
    except RecursionError:
        problems.add(None, None, "not JSON (nested too deeply)")
        return [], []
    if not isinstance(root, _JsonObject):
        problems.add(1, None, "expected an object with a 'nodes' list")
        return [], []
    rows: list[_Row] = []
    contracts: list[dict[str, Any]] = []
    have_nodes = False
    for key, value in _json_pairs(root, problems, "top level"):
        if key == "nodes":
            have_nodes = True
            if not isinstance(value, list):
                problems.add(root.line, None, "'nodes' must be a list of objects")
                continue
            for i, item in enumerate(value):
                row = _json_node_row(item, i, root.line, problems)
                if row is not None:
                    rows.append(row)
        elif key == "contracts":
            if value is None:
                continue
            if not isinstance(value, list):
                problems.add(root.line, None, "'contracts' must be a list of objects")
                continue
            for i, item in enumerate(value):
                if not isinstance(item, _JsonObject):
                    problems.add(root.line, None, f"contracts[{i}]: expected an object")
                    continue
                data = _json_plain(item)
                data["__line__"] = item.line
                contracts.append(data)
        else:
            problems.add(root.line, None, f"unknown top-level key {key!r} (known: nodes, contracts)")
    if not have_nodes:
        problems.add(root.line, None, "missing required top-level key 'nodes'")
    return rows, contracts


def _json_node_row(item: Any, index: int, outer_line: int, problems: _Problems) -> _Row | None:
    if not isinstance(item, _JsonObject):
        problems.add(outer_line, None, f"nodes[{index}]: expected an object")
        return None
    line = item.line
    values: dict[str, str | None] = {}
    for key, value in _json_pairs(item, problems, f"nodes[{index}]"):
        if key == "snmp":
            if value is None:
                continue
            if not isinstance(value, _JsonObject):
                problems.add(line, "snmp", "expected an object")
                continue
            for skey, svalue in _json_pairs(value, problems, f"nodes[{index}].snmp"):
                if skey not in SNMP_KEYS:
                    problems.add(line, None, f"unknown key 'snmp.{skey}' (known: {', '.join(SNMP_KEYS)})")
                    continue
                try:
                    values[f"snmp_{skey}"] = _json_scalar(svalue)
                except TypeError as exc:
                    problems.add(line, f"snmp_{skey}", str(exc))
        elif key not in NODE_COLUMNS:
            problems.add(line, None, f"unknown key {key!r} (known: {', '.join(NODE_COLUMNS)}, snmp)")
        else:
            try:
                values[key] = _json_scalar(value)
            except TypeError as exc:
                problems.add(line, key, str(exc))
    return _Row(line, values)


# ------------------------------------------------------------------------------------------- loading


def format_for_path(path: Path) -> InventoryFormat:
    """The inventory format of a file name by its extension; :class:`InventoryError` if unknown."""
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InventoryError(
            f"unknown inventory format {path.suffix or '(no extension)'!r}"
            " (expected .csv, .yaml, .yml or .json)",
            where=str(path),
        )
    return fmt


def parse_inventory_document(
    text: str, fmt: InventoryFormat, *, source: str = "<inventory>"
) -> tuple[Inventory, list[dict[str, Any]]]:
    """Parse and validate inventory text (see the module doc); ``source`` names it in errors.

    Returns the inventory and the raw ``contracts`` list (always empty for CSV).
    """
    problems = _Problems(source, fmt)
    text = text.removeprefix("\ufeff")
    contracts: list[dict[str, Any]] = []
    if fmt == "csv":
        rows = _rows_from_csv(text, problems)
    elif fmt == "yaml":
        rows, contracts = _rows_from_yaml(text, problems)
    elif fmt == "json":
        rows, contracts = _rows_from_json(text, problems)
    else:
        raise ValueError(f"unknown inventory format {fmt!r}")
    return _assemble(rows, problems), contracts


def load_inventory_document(path: Path) -> tuple[Inventory, list[dict[str, Any]]]:
    """Read an inventory file (format by extension) and its raw ``contracts`` (see the module doc)."""
    fmt = format_for_path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read ({exc.strerror})", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"not UTF-8 text (byte {exc.start})", where=str(path)) from None
    return parse_inventory_document(text, fmt, source=str(path))


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file (CSV, YAML or JSON, by extension)."""
    return load_inventory_document(path)[0]


# ------------------------------------------------------------------------------------------- dumping


def _time_text(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        value = value.astimezone(UTC)  # RFC 3339 offsets have no seconds
    return value.isoformat()


def _fee_text(value: Decimal) -> str:
    return format(value, "f")


def _node_values(node: Node, include_secrets: bool) -> dict[str, str | int | bool | Decimal | None]:
    """The node's fields by CSV column name, typed; ``None`` for what is not given."""
    out: dict[str, str | int | bool | Decimal | None] = {
        "id": node.id,
        "kind": node.kind.value,
        "parent": node.parent,
        "name": node.name or None,
        "address": node.address,
        "channels": node.channels if node.kind in (NodeKind.CAMERA, NodeKind.NVR) else None,
        "bandwidth_mbps": node.bandwidth_mbps,
        "monthly_fee": node.monthly_fee,
        "in_county": node.in_county,
        "commissioned": _time_text(node.commissioned) if node.commissioned else None,
        "decommissioned": _time_text(node.decommissioned) if node.decommissioned else None,
    }
    if node.snmp is not None:
        for key in SNMP_KEYS:
            value = getattr(node.snmp, key)
            if key in SECRET_KEYS and not include_secrets and value is not None:
                value = ""
            out[f"snmp_{key}"] = value
    return out


def _csv_cell(value: str | int | bool | Decimal | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _fee_text(value)
    return str(value)


def _structured_value(value: str | int | bool | Decimal | None) -> Any:
    """A YAML/JSON value: decimals as numbers when that is exact, else as text."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else _fee_text(value)
    return value


def _structured_node(node: Node, include_secrets: bool) -> dict[str, Any]:
    values = _node_values(node, include_secrets)
    out: dict[str, Any] = {}
    for key in NODE_COLUMNS:
        if values[key] is not None:
            out[key] = _structured_value(values[key])
    if node.snmp is not None:
        out["snmp"] = {k: values[f"snmp_{k}"] for k in SNMP_KEYS if values[f"snmp_{k}"] is not None}
    return out


def dump_inventory(inv: Inventory, fmt: InventoryFormat, *, include_secrets: bool = False) -> str:
    """Write an inventory as CSV, YAML or JSON text, in inventory order.

    ``load`` of the result gives back an equal inventory when ``include_secrets`` is true; otherwise SNMP
    communities and keys are written empty (an empty community reads back as ``public``). CSV has the SNMP
    columns only when some node has SNMP settings; JSON has one node per line.
    """
    nodes = inv.nodes()
    if fmt == "csv":
        columns = CSV_COLUMNS if any(n.snmp is not None for n in nodes) else NODE_COLUMNS
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for node in nodes:
            values = _node_values(node, include_secrets)
            writer.writerow([_csv_cell(values.get(c)) for c in columns])
        return buf.getvalue()
    if fmt == "yaml":
        doc = {"nodes": [_structured_node(n, include_secrets) for n in nodes]}
        return yaml.dump(
            doc, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120
        )
    if fmt == "json":
        lines = [json.dumps(_structured_node(n, include_secrets), ensure_ascii=False) for n in nodes]
        body = ",\n".join(f"  {line}" for line in lines)
        return '{"nodes": [\n' + body + ("\n" if lines else "") + "]}\n"
    raise ValueError(f"unknown inventory format {fmt!r}")


# ---------------------------------------------------------------------------------------------- diff


@dataclass(frozen=True, slots=True)
class InventoryDiff:
    """What a re-import changes: ids added (new order), changed (new order) and removed (old order)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        return f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed"


def diff_inventories(old: Inventory, new: Inventory) -> InventoryDiff:
    """Compare two inventories node by node (a node changes when any of its fields does; order is ignored)."""
    added = tuple(nid for nid in new if nid not in old)
    changed = tuple(nid for nid in new if nid in old and old[nid] != new[nid])
    removed = tuple(nid for nid in old if nid not in new)
    return InventoryDiff(added, changed, removed)
