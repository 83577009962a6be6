"""Inventory files in and out: every import error names file:line and field; dumps round-trip."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import InventoryError
from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings
from monitor.inventory_io import (
    MAX_ERRORS,
    InventoryDiff,
    InventoryFormat,
    InventoryImportError,
    diff_inventories,
    dump_inventory,
    format_for_path,
    load_inventory,
    load_inventory_document,
    parse_inventory_document,
)
from monitor.sample import sample_inventory

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
FORMATS: tuple[InventoryFormat, ...] = ("csv", "yaml", "json")

# ---------------------------------------------------------------------------------------- bad files

# (id, format, file content, expected substring of str(error)); the file is written as bad.<format>.
BAD_FILES: list[tuple[str, str, str, str]] = [
    # --- CSV
    (
        "csv-duplicate-identical",
        "csv",
        "id,kind\nA,area\nA,area\n",
        "bad.csv:3: field 'id': duplicate row: id 'A' is also on line 2 (identical)",
    ),
    (
        "csv-duplicate-same-meaning",
        "csv",
        "id,kind,in_county\nA,cpe,yes\nA,cpe,true\n",
        "bad.csv:3: field 'id': duplicate row: id 'A' is also on line 2 (identical)",
    ),
    (
        "csv-duplicate-conflicting",
        "csv",
        "id,kind,name,address\nA,cpe,x,127.0.0.2\nB,area,,\nA,cpe,y,127.0.0.3\n",
        "bad.csv:4: field 'id': conflicting duplicate row: id 'A' is also on line 2"
        " with different name, address",
    ),
    (
        "csv-missing-parent",
        "csv",
        "id,kind,parent\nA,area,\nB,branch,Z\n",
        "bad.csv:3: field 'parent': parent 'Z' does not exist",
    ),
    (
        "csv-cycle",
        "csv",
        "id,kind,parent\nR,area,\nA,branch,B\nB,branch,C\nC,branch,A\n",
        "bad.csv:3: field 'parent': cycle: A -> B -> C -> A",
    ),
    (
        "csv-cycle-reported-at-first-line",
        "csv",
        "id,kind,parent\nX,cpe,B\nB,branch,A\nA,branch,B\n",
        "bad.csv:3: field 'parent': cycle: B -> A -> B",
    ),
    ("csv-own-parent", "csv", "id,kind,parent\nA,area,A\n", "bad.csv:2: field 'parent': cycle: A -> A"),
    (
        "csv-bad-address",
        "csv",
        "id,kind,address\nA,cpe,127.0.0.300\n",
        "bad.csv:2: field 'address': '127.0.0.300' is not an IPv4 or IPv6 address",
    ),
    (
        "csv-bad-kind",
        "csv",
        "id,kind\nA,router\n",
        "bad.csv:2: field 'kind': 'router' is not a node kind"
        " (area, branch, power, switch, site, cpe, camera, nvr)",
    ),
    (
        "csv-bad-channels",
        "csv",
        "id,kind,channels\nA,camera,two\n",
        "bad.csv:2: field 'channels': 'two' is not an integer",
    ),
    (
        "csv-negative-channels",
        "csv",
        "id,kind,channels\nA,camera,-1\n",
        "bad.csv:2: field 'channels': -1 is less than 0",
    ),
    (
        "csv-bad-fee",
        "csv",
        "id,kind,monthly_fee\nA,cpe,113元\n",
        "bad.csv:2: field 'monthly_fee': '113元' is not a decimal number",
    ),
    ("csv-nan-fee", "csv", "id,kind,monthly_fee\nA,cpe,NaN\n", "field 'monthly_fee': 'NaN' is not a decimal"),
    (
        "csv-negative-fee",
        "csv",
        "id,kind,monthly_fee\nA,cpe,-90\n",
        "bad.csv:2: field 'monthly_fee': -90 is negative",
    ),
    (
        "csv-bad-bandwidth",
        "csv",
        "id,kind,bandwidth_mbps\nA,cpe,8M\n",
        "bad.csv:2: field 'bandwidth_mbps': '8M' is not an integer",
    ),
    (
        "csv-zero-bandwidth",
        "csv",
        "id,kind,bandwidth_mbps\nA,cpe,0\n",
        "bad.csv:2: field 'bandwidth_mbps': 0 is less than 1",
    ),
    (
        "csv-time-without-offset",
        "csv",
        "id,kind,commissioned\nA,cpe,2026-01-01T00:00:00\n",
        "bad.csv:2: field 'commissioned': '2026-01-01T00:00:00' has no UTC offset (add Z or +08:00)",
    ),
    (
        "csv-time-not-rfc3339",
        "csv",
        "id,kind,decommissioned\nA,cpe,2026-01-01\n",
        "bad.csv:2: field 'decommissioned': '2026-01-01' is not an RFC 3339 time",
    ),
    (
        "csv-time-impossible",
        "csv",
        "id,kind,commissioned\nA,cpe,2026-02-30T00:00:00Z\n",
        "bad.csv:2: field 'commissioned': '2026-02-30T00:00:00Z' is not a valid time",
    ),
    (
        "csv-decommissioned-before-commissioned",
        "csv",
        "id,kind,commissioned,decommissioned\nA,cpe,2026-02-01T00:00:00+08:00,2026-01-01T00:00:00+08:00\n",
        "bad.csv:2: field 'decommissioned': 2026-01-01T00:00:00+08:00 is before commissioned "
        "2026-02-01T00:00:00+08:00",
    ),
    (
        "csv-bad-id",
        "csv",
        "id,kind\nCPE 42,cpe\n",
        "bad.csv:2: field 'id': 'CPE 42' is not a node id (1-64 letters, digits, '.', '_' or '-')",
    ),
    ("csv-long-id", "csv", f"id,kind\n{'x' * 65},cpe\n", "bad.csv:2: field 'id': 'xxxxx"),
    (
        "csv-bad-parent-id",
        "csv",
        "id,kind,parent\nA,cpe,T/1\n",
        "bad.csv:2: field 'parent': 'T/1' is not a node id",
    ),
    (
        "csv-unknown-column",
        "csv",
        "id,kind,contract\nA,cpe,C1\n",
        "bad.csv:1: unknown column 'contract' (known: id, kind, parent,",
    ),
    (
        "csv-duplicate-column",
        "csv",
        "id,kind,name,name\nA,cpe,x,y\n",
        "bad.csv:1: column 'name' appears twice",
    ),
    ("csv-missing-column", "csv", "id,name\nA,x\n", "bad.csv:1: missing required column 'kind'"),
    ("csv-empty-file", "csv", "", "bad.csv:1: empty file: expected a header row"),
    ("csv-missing-id", "csv", "id,kind\n,cpe\n", "bad.csv:2: field 'id': required value is missing"),
    ("csv-missing-kind", "csv", "id,kind\nA, \n", "bad.csv:2: field 'kind': required value is missing"),
    (
        "csv-nvr-without-channels",
        "csv",
        "id,kind,channels\nA,nvr,\n",
        "bad.csv:2: field 'channels': an nvr must state how many channels it records",
    ),
    (
        "csv-nvr-zero",
        "csv",
        "id,kind,channels\nA,nvr,0\n",
        "bad.csv:2: field 'channels': an nvr records at least 1",
    ),
    (
        "csv-channels-on-cpe",
        "csv",
        "id,kind,channels\nA,cpe,2\n",
        "bad.csv:2: field 'channels': a cpe node carries no channels (got 2)",
    ),
    (
        "csv-bad-in-county",
        "csv",
        "id,kind,in_county\nA,cpe,maybe\n",
        "bad.csv:2: field 'in_county': 'maybe' is not one of true/false/yes/no/1/0/是/否",
    ),
    (
        "csv-extra-cells",
        "csv",
        "id,kind\nA,cpe,oops\n",
        "bad.csv:2: row has 3 cells but the header has 2 columns",
    ),
    (
        "csv-line-counts-quoted-newlines-and-blank-lines",
        "csv",
        'id,kind,name\nA,area,"two\nlines"\n\nB,router,\n',
        "bad.csv:5: field 'kind': 'router' is not a node kind",
    ),
    (
        "csv-snmp-without-version",
        "csv",
        "id,kind,snmp_community\nA,cpe,secret\n",
        "bad.csv:2: field 'snmp_community': snmp settings need snmp_version ('2c' or '3')",
    ),
    (
        "csv-snmp-bad-version",
        "csv",
        "id,kind,snmp_version\nA,cpe,1\n",
        "bad.csv:2: field 'snmp_version': '1' is not an SNMP version ('2c' or '3')",
    ),
    (
        "csv-snmp-on-camera",
        "csv",
        "id,kind,snmp_version\nA,camera,2c\n",
        "bad.csv:2: field 'snmp_version': snmp settings belong on a cpe, not a camera",
    ),
    (
        "csv-snmp-bad-port",
        "csv",
        "id,kind,snmp_version,snmp_port\nA,cpe,2c,70000\n",
        "bad.csv:2: field 'snmp_port': 70000 is not a UDP port (1-65535)",
    ),
    (
        "csv-snmp-v3-without-user",
        "csv",
        "id,kind,snmp_version\nA,cpe,3\n",
        "bad.csv:2: field 'snmp_user': snmp version 3 needs a user",
    ),
    (
        "csv-snmp-v3-field-on-v2c",
        "csv",
        "id,kind,snmp_version,snmp_user\nA,cpe,2c,ops\n",
        "bad.csv:2: field 'snmp_user': is for SNMP version 3, not 2c",
    ),
    (
        "csv-snmp-short-key",
        "csv",
        "id,kind,snmp_version,snmp_user,snmp_auth_protocol,snmp_auth_key\nA,cpe,3,ops,SHA,short\n",
        "bad.csv:2: field 'snmp_auth_key': an SNMPv3 key has at least 8 characters",
    ),
    (
        "csv-snmp-bad-protocol",
        "csv",
        "id,kind,snmp_version,snmp_user,snmp_auth_protocol\nA,cpe,3,ops,ROT13\n",
        "bad.csv:2: field 'snmp_auth_protocol': 'ROT13' is not one of MD5, SHA",
    ),
    # --- YAML
    (
        "yaml-bad-address",
        "yaml",
        "nodes:\n  - id: A\n    kind: area\n  - id: B\n    kind: cpe\n    parent: A\n    address: nope\n",
        "bad.yaml:4: field 'address': 'nope' is not an IPv4 or IPv6 address",
    ),
    (
        "yaml-duplicate",
        "yaml",
        "nodes:\n- {id: A, kind: area}\n- {id: A, kind: area, name: x}\n",
        "bad.yaml:3: field 'id': conflicting duplicate row: id 'A' is also on line 2 with different name",
    ),
    (
        "yaml-missing-parent",
        "yaml",
        "nodes:\n- {id: A, kind: area}\n- {id: B, kind: branch, parent: Z}\n",
        "bad.yaml:3: field 'parent': parent 'Z' does not exist",
    ),
    (
        "yaml-cycle",
        "yaml",
        "nodes:\n- {id: A, kind: area, parent: B}\n- {id: B, kind: branch, parent: A}\n",
        "bad.yaml:2: field 'parent': cycle: A -> B -> A",
    ),
    (
        "yaml-unquoted-time-without-offset",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  commissioned: 2026-01-01 00:00:00\n",
        "bad.yaml:2: field 'commissioned': '2026-01-01 00:00:00' has no UTC offset",
    ),
    (
        "yaml-bad-kind",
        "yaml",
        "nodes:\n- {id: A, kind: tower}\n",
        "bad.yaml:2: field 'kind': 'tower' is not a node",
    ),
    (
        "yaml-bad-id",
        "yaml",
        "nodes:\n- {id: 'a b', kind: cpe}\n",
        "bad.yaml:2: field 'id': 'a b' is not a node id",
    ),
    (
        "yaml-bad-number",
        "yaml",
        "nodes:\n- {id: A, kind: camera, channels: 1.5}\n",
        "field 'channels': '1.5' is not",
    ),
    (
        "yaml-missing-kind",
        "yaml",
        "nodes:\n- {id: A}\n",
        "bad.yaml:2: field 'kind': required value is missing",
    ),
    (
        "yaml-unknown-key",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  contract: C1\n",
        "bad.yaml:2: unknown key 'contract' (known: id, kind,",
    ),
    (
        "yaml-snmp-bad-port",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  snmp:\n    version: 2c\n    port: high\n",
        "bad.yaml:2: field 'snmp.port': 'high' is not an integer",
    ),
    (
        "yaml-snmp-unknown-key",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  snmp: {version: 2c, retries: 3}\n",
        "bad.yaml:2: unknown key 'snmp.retries'",
    ),
    (
        "yaml-list-value",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  address: [127.0.0.2]\n",
        "bad.yaml:2: field 'address': expected a single value",
    ),
    (
        "yaml-duplicate-key",
        "yaml",
        "nodes:\n- id: A\n  kind: cpe\n  kind: camera\n",
        "bad.yaml:4: field 'kind': nodes[0]: key 'kind' appears twice",
    ),
    ("yaml-not-yaml", "yaml", "nodes:\n- {id: A\n", "bad.yaml:3: not YAML"),
    ("yaml-not-a-mapping", "yaml", "- id: A\n", "bad.yaml:1: expected a mapping with a 'nodes' list"),
    ("yaml-empty", "yaml", "", "bad.yaml: expected a mapping with a 'nodes' list"),
    ("yaml-no-nodes", "yaml", "contracts: []\n", "bad.yaml:1: missing required top-level key 'nodes'"),
    ("yaml-unknown-top-key", "yaml", "nodes: []\nnode: []\n", "bad.yaml:1: unknown top-level key 'node'"),
    (
        "yaml-node-not-mapping",
        "yaml",
        "nodes:\n- {id: A, kind: area}\n- A\n",
        "bad.yaml:3: nodes[1]: expected a",
    ),
    (
        "yaml-contract-not-mapping",
        "yaml",
        "nodes: []\ncontracts:\n- c1\n",
        "bad.yaml:3: contracts[0]: expected",
    ),
    # --- JSON
    (
        "json-bad-address",
        "json",
        '{"nodes": [\n  {"id": "A", "kind": "area"},\n  {"id": "B", "kind": "cpe",\n   "address": "x"}\n]}\n',
        "bad.json:3: field 'address': 'x' is not an IPv4 or IPv6 address",
    ),
    (
        "json-duplicate",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "area"},\n{"id": "A", "kind": "area"}\n]}',
        "bad.json:3: field 'id': duplicate row: id 'A' is also on line 2 (identical)",
    ),
    (
        "json-missing-parent",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "area"},\n{"id": "B", "kind": "cpe", "parent": "Q"}\n]}',
        "bad.json:3: field 'parent': parent 'Q' does not exist",
    ),
    (
        "json-cycle",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "area", "parent": "B"},\n'
        '{"id": "B", "kind": "cpe", "parent": "A"}\n]}',
        "bad.json:2: field 'parent': cycle: A -> B -> A",
    ),
    (
        "json-bad-time",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "cpe", "commissioned": "2026-01-01T00:00:00"}\n]}',
        "bad.json:2: field 'commissioned': '2026-01-01T00:00:00' has no UTC offset",
    ),
    (
        "json-bad-number",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "camera", "channels": true}\n]}',
        "bad.json:2: field 'channels': 'true' is not an integer",
    ),
    (
        "json-bad-kind",
        "json",
        '{"nodes": [\n{"id": "A", "kind": 7}\n]}',
        "bad.json:2: field 'kind': '7' is not a node kind",
    ),
    (
        "json-unknown-key",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "cpe", "snmp": {"version": "2c", "timeout": 1}}\n]}',
        "bad.json:2: unknown key 'snmp.timeout'",
    ),
    (
        "json-braces-in-strings-do-not-shift-lines",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "area", "name": "{\\"}"},\n'
        '{"id": "B", "kind": "area", "name": "}"},\n'
        '{"id": "C", "kind": "cpe", "parent": "Z"}\n]}',
        "bad.json:4: field 'parent': parent 'Z' does not exist",
    ),
    (
        "json-not-json",
        "json",
        '{"nodes": [\n{"id": "A",}\n]}',
        "bad.json:2: not JSON (Expecting property name",
    ),
    ("json-not-object", "json", "[]", "bad.json:1: expected an object with a 'nodes' list"),
    ("json-no-nodes", "json", "{}", "bad.json:1: missing required top-level key 'nodes'"),
    ("json-nodes-not-list", "json", '{"nodes": {}}', "bad.json:1: 'nodes' must be a list of objects"),
    ("json-node-not-object", "json", '{"nodes": [1]}', "bad.json:1: nodes[0]: expected an object"),
    (
        "json-object-value",
        "json",
        '{"nodes": [\n{"id": "A", "kind": "cpe", "name": {"zh": "x"}}\n]}',
        "bad.json:2: field 'name': expected a single value",
    ),
]


@pytest.mark.parametrize(
    ("fmt", "content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_is_reported_with_file_line_and_field(
    tmp_path: Path, fmt: str, content: str, expected: str
) -> None:
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert expected in message
    assert message.startswith(str(tmp_path))


def test_all_problems_are_reported_sorted_by_line(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("id,kind,parent,address\nA,cpe,Z,\nB,cpe,,nope\nC,tower,,\n", encoding="utf-8")
    with pytest.raises(InventoryImportError) as info:
        load_inventory(path)
    err = info.value
    assert err.total == 3
    assert [e.where for e in err.errors] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert (err.where, err.field) == (f"{path}:2", "parent")
    assert str(err).splitlines() == [
        f"{path}:2: field 'parent': parent 'Z' does not exist",
        f"{path}:3: field 'address': 'nope' is not an IPv4 or IPv6 address",
        f"{path}:4: field 'kind': 'tower' is not a node kind"
        " (area, branch, power, switch, site, cpe, camera, nvr)",
        "(3 errors)",
    ]


def test_at_most_max_errors_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "worse.csv"
    path.write_text("id,kind\n" + "".join(f"N{i},tower\n" for i in range(25)), encoding="utf-8")
    with pytest.raises(InventoryImportError) as info:
        load_inventory(path)
    assert len(info.value.errors) == MAX_ERRORS
    assert str(info.value).endswith(f"(25 errors, first {MAX_ERRORS} shown)")


def test_one_problem_has_no_count_line(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("id,kind\nA,tower\n", encoding="utf-8")
    with pytest.raises(InventoryImportError) as info:
        load_inventory(path)
    assert "\n" not in str(info.value)
    assert info.value.message.startswith("'tower' is not a node kind")


def test_unknown_extension_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"unknown inventory format '\.txt'"):
        format_for_path(tmp_path / "inv.txt")
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,kind,name\nA,area,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(latin)


# ------------------------------------------------------------------------------------------- reading


def test_small_csv() -> None:
    inv = load_inventory(DATA / "small.csv")
    assert len(inv) == 13
    assert inv.children[None] == ["T01"]
    assert inv.children["T01"] == ["T01-B1", "T01-B2"]
    assert sum(1 for n in inv.values() if n.kind is NodeKind.CPE) == 3
    assert len(inv.channels) == 14
    assert inv["NVR-0003"].channels == 8
    assert inv["CPE-0003"].in_county is False
    assert inv["CPE-0001"].monthly_fee == Decimal(113)
    assert inv["CPE-0001"].snmp == SnmpSettings("2c", "slw-CPE-0001", port=16100, uplink_if=2)
    assert inv["CPE-0002"].snmp is None
    assert inv["T01"].commissioned == datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))


def test_csv_defaults_and_lenient_spellings(tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text(
        "\ufeffID, Kind ,parent,channels,in_county,commissioned,snmp_version,snmp_port\n"
        "A,AREA,,,,,,\n"
        "C,cpe,A,,是,2026-10-03T00:00:00Z,v2c,\n"
        "K,camera,C,,,,,\n"
        "K0,camera,C,0,,,,\n"
        "N,nvr,C,16,否,2026-10-03 08:00:00.1234567+08:00,,\n"
        ",,,,,,,\n",
        encoding="utf-8",
    )
    inv = load_inventory(path)
    assert list(inv) == ["A", "C", "K", "K0", "N"]
    assert inv["A"].kind is NodeKind.AREA and inv["A"].channels == 0
    assert inv["K"].channels == 1 and inv["K0"].channels == 0 and inv["N"].channels == 16
    assert inv["C"].in_county is True and inv["N"].in_county is False and inv["A"].in_county is None
    assert inv["C"].commissioned == datetime(2026, 10, 3, tzinfo=UTC)
    assert inv["N"].commissioned == datetime(2026, 10, 3, 0, 0, 0, 123456, tzinfo=UTC)
    assert inv["C"].snmp == SnmpSettings(version="2c", community="public", port=161)


def test_yaml_reads_scalar_text_and_returns_contracts(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "nodes:\n"
        "  - id: 0042\n"
        "    kind: cpe\n"
        "    name: ~\n"
        "    in_county: no\n"
        "    monthly_fee: 113.50\n"
        "    commissioned: 2026-01-01T00:00:00+08:00\n"
        "    snmp: {version: '3', user: ops, auth_protocol: sha, auth_key: 12345678, port: 16100}\n"
        "contracts:\n"
        "  - name: county-2026\n"
        "    months: 16\n"
        "  - {name: other}\n",
        encoding="utf-8",
    )
    inv, contracts = load_inventory_document(path)
    node = inv["0042"]
    assert node.name == "" and node.in_county is False and node.monthly_fee == Decimal("113.50")
    assert node.snmp == SnmpSettings("3", user="ops", auth_protocol="SHA", auth_key="12345678", port=16100)
    assert contracts == [
        {"name": "county-2026", "months": 16, "__line__": 10},
        {"name": "other", "__line__": 12},
    ]
    assert load_inventory(path) == inv


def test_json_contracts_and_object_lines(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text(
        '{\n  "contracts": [\n    {"name": "c", "fee": 1.5, "x": {"y": [1]}}\n  ],\n'
        '  "nodes": [\n    {"id": "A", "kind": "area", "in_county": 1},\n'
        '    {\n      "id": "B",\n      "kind": "cpe",\n      "snmp": {"version": "2c"},\n'
        '      "parent": "Z"\n    }\n  ]\n}\n',
        encoding="utf-8",
    )
    with pytest.raises(InventoryError, match=r"inv\.json:7: field 'parent': parent 'Z' does not exist"):
        load_inventory(path)
    path.write_text(path.read_text(encoding="utf-8").replace('"Z"', '"A"'), encoding="utf-8")
    inv, contracts = load_inventory_document(path)
    assert inv["A"].in_county is True and inv["B"].snmp == SnmpSettings()
    assert contracts == [{"name": "c", "fee": 1.5, "x": {"y": [1]}, "__line__": 3}]


def test_csv_has_no_contracts() -> None:
    assert load_inventory_document(DATA / "small.csv")[1] == []


# -------------------------------------------------------------------------------------------- dumping


@pytest.fixture(scope="module")
def sample() -> Inventory:
    return sample_inventory()


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_round_trips(tmp_path: Path, sample: Inventory, fmt: InventoryFormat) -> None:
    path = tmp_path / f"sample.{fmt}"
    path.write_text(dump_inventory(sample, fmt, include_secrets=True), encoding="utf-8")
    back = load_inventory(path)
    assert back == sample
    assert list(back) == list(sample)
    assert [back[i] for i in back] == [sample[i] for i in sample]
    assert not diff_inventories(sample, back)


@pytest.mark.parametrize("fmt", FORMATS)
def test_dump_without_secrets(sample: Inventory, fmt: InventoryFormat) -> None:
    text = dump_inventory(sample, fmt)
    assert "slw-" not in text
    back, _ = parse_inventory_document(text, fmt)
    snmp_ids = [n.id for n in sample.values() if n.snmp is not None]
    assert snmp_ids
    for nid in snmp_ids:
        got, want = back[nid].snmp, sample[nid].snmp
        assert got is not None and want is not None
        assert got.community == "public"
        assert dataclasses.replace(got, community=want.community) == want
    assert diff_inventories(sample, back).changed == tuple(snmp_ids)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(
        alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85"),
        max_size=20,
    ).filter(lambda s: s == s.strip()),
    fee=st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    seconds=st.integers(min_value=0, max_value=10**9),
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_values_round_trip(name: str, fee: Decimal, offset_minutes: int, seconds: int, micro: int) -> None:
    tz = timezone(timedelta(minutes=offset_minutes))
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)
    snmp = SnmpSettings("3", user=name or "u", auth_protocol="SHA", auth_key="k,\"'x" * 2, port=1)
    inv = Inventory(
        [
            Node("A", NodeKind.AREA, name=name),
            Node(
                "C", NodeKind.CPE, "A", name=name, monthly_fee=fee, commissioned=at.astimezone(tz), snmp=snmp
            ),
            Node("V", NodeKind.NVR, "C", address="::1", channels=3, decommissioned=at, in_county=False),
        ]
    )
    for fmt in FORMATS:
        back, _ = parse_inventory_document(dump_inventory(inv, fmt, include_secrets=True), fmt)
        assert [back[i] for i in back] == [inv[i] for i in inv], fmt


def test_dump_odd_values_round_trip() -> None:
    odd = timezone(timedelta(hours=5, minutes=30, seconds=15))
    inv = Inventory(
        [
            Node("A", NodeKind.AREA, name='a "quoted", name\nwith a newline'),
            Node(
                "B",
                NodeKind.CPE,
                "A",
                monthly_fee=Decimal("113.5"),
                commissioned=datetime(2026, 1, 1, tzinfo=odd),
            ),
            Node("C", NodeKind.CPE, "A", monthly_fee=Decimal("0.1234567890123456789")),
            Node("D", NodeKind.CPE, "A", monthly_fee=Decimal("1E+3"), bandwidth_mbps=8),
            Node("E", NodeKind.CAMERA, "B", channels=0, address="fe80::1"),
        ]
    )
    for fmt in FORMATS:
        back, _ = parse_inventory_document(dump_inventory(inv, fmt), fmt)
        assert [back[i] for i in back] == [inv[i] for i in inv], fmt


def test_empty_inventory_round_trips() -> None:
    for fmt in FORMATS:
        back, _ = parse_inventory_document(dump_inventory(Inventory([]), fmt), fmt)
        assert len(back) == 0


def test_dump_rejects_unknown_format(sample: Inventory) -> None:
    with pytest.raises(ValueError, match="unknown inventory format"):
        dump_inventory(sample, "xml")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- diff


def test_diff_reports_added_changed_removed(tmp_path: Path) -> None:
    old = load_inventory(DATA / "small.csv")
    text = (DATA / "small.csv").read_text(encoding="utf-8")
    text = text.replace("Nanpo NVR,127.30.0.1,8", "Nanpo NVR,127.30.0.1,16")  # changed
    text = text.replace(
        "CAM-0002-3,camera,CPE-0002,Xiwan camera 3,127.20.0.5,1,,,,2026-01-01T00:00:00+08:00,,,,,\n", ""
    )
    text += "CAM-0003-2,camera,CPE-0003,Nanpo camera 2,127.20.0.7,1,,,,2026-10-15T00:00:00+08:00,,,,,\n"
    text = text.replace("CPE-0001,cpe,T01-B1,", "CPE-0001,cpe,T01-B2,")  # re-parented
    path = tmp_path / "small.csv"
    path.write_text(text, encoding="utf-8")
    new = load_inventory(path)
    diff = diff_inventories(old, new)
    assert diff == InventoryDiff(
        added=("CAM-0003-2",), changed=("CPE-0001", "NVR-0003"), removed=("CAM-0002-3",)
    )
    assert diff.summary() == "1 added, 2 changed, 1 removed"
    assert bool(diff)
    assert not diff_inventories(old, old)
    assert diff_inventories(new, old) == InventoryDiff(
        ("CAM-0002-3",), ("CPE-0001", "NVR-0003"), ("CAM-0003-2",)
    )
