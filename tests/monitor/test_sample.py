"""The sample network matches the contract's tariff and the shape the brief asks for."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest

from monitor.inventory import Inventory, NodeKind
from monitor.sample import (
    CHINA_TZ,
    COMMISSIONED,
    MONTHLY_TOTAL,
    SNMP_PORT,
    TARIFF_LINES,
    TOWNSHIPS,
    sample_inventory,
)


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return sample_inventory()


def _of(inv: Inventory, kind: NodeKind) -> list[str]:
    return [nid for nid, n in inv.items() if n.kind is kind]


def test_593_circuits_in_the_seven_tariff_lines(inv: Inventory) -> None:
    cpes = [inv[nid] for nid in _of(inv, NodeKind.CPE)]
    assert len(cpes) == 593
    assert sum(t.circuits for t in TARIFF_LINES) == 593
    got = Counter((n.bandwidth_mbps, n.monthly_fee) for n in cpes)
    assert got == {
        (8, Decimal(113)): 198,
        (100, Decimal(120)): 14,
        (1000, Decimal(1999)): 1,
        (20, Decimal(102)): 42,
        (20, Decimal(116)): 42 + 1,
        (10, Decimal(90)): 295,
    }
    total = sum((n.monthly_fee or Decimal(0) for n in cpes), Decimal(0))
    assert total == MONTHLY_TOTAL == Decimal(61875)
    assert total * 16 == Decimal(990000)


def test_tree_shape(inv: Inventory) -> None:
    areas = _of(inv, NodeKind.AREA)
    assert areas == [t[0] for t in TOWNSHIPS] == [f"T{i:02d}" for i in range(1, 13)]
    assert inv.children[None] == areas
    for nid in _of(inv, NodeKind.BRANCH):
        assert re.fullmatch(r"T\d\d-B\d", nid) and inv[nid].parent == nid[:3]
    assert len(_of(inv, NodeKind.POWER)) > 0
    for nid in _of(inv, NodeKind.CPE):
        assert re.fullmatch(r"CPE-\d{4}", nid)
        parent = inv[inv[nid].parent or ""]
        assert parent.kind in (NodeKind.BRANCH, NodeKind.POWER)
    for nid in _of(inv, NodeKind.CAMERA):
        m = re.fullmatch(r"CAM-(\d{4})-(\d)", nid)
        assert m and inv[nid].parent == f"CPE-{m.group(1)}"
    for nid in _of(inv, NodeKind.NVR):
        m = re.fullmatch(r"NVR-(\d{4})", nid)
        assert m and inv[nid].parent == f"CPE-{m.group(1)}"
    assert inv["CPE-0001"].bandwidth_mbps == 1000 and inv.area_of("CPE-0001") == "T01"
    assert inv.path("CPE-0042")[0].startswith("T")


def test_cameras_nvrs_and_channels(inv: Inventory) -> None:
    cameras_per_cpe = Counter(inv[nid].parent for nid in _of(inv, NodeKind.CAMERA))
    assert max(cameras_per_cpe.values()) <= 8
    typical = sum(1 for c in cameras_per_cpe.values() if 4 <= c <= 6)
    assert typical > 0.6 * len(cameras_per_cpe)
    nvrs = [inv[nid] for nid in _of(inv, NodeKind.NVR)]
    assert 20 <= len(nvrs) <= 100
    assert all(n.channels > 1 for n in nvrs)
    assert {n.channels for n in nvrs} <= {4, 8, 16}
    for cpe in _of(inv, NodeKind.CPE):
        assert inv.channels_under[cpe], f"{cpe} has no channels"
    assert 2800 <= len(inv.channels) <= 3300
    assert all(inv[nid].channels == 1 for nid in _of(inv, NodeKind.CAMERA))


def test_addresses_are_unique_loopback_and_not_edge_hosts(inv: Inventory) -> None:
    addresses = [n.address for n in inv.values() if n.address is not None]
    assert len(addresses) == len(set(addresses))
    for text in addresses:
        ip = ipaddress.IPv4Address(text)
        assert ip in ipaddress.IPv4Network("127.0.0.0/8")
        assert text != "127.0.0.1"
        assert text.split(".")[-1] not in ("0", "255")
    prefixes = {NodeKind.CPE: "127.10.", NodeKind.CAMERA: "127.20.", NodeKind.NVR: "127.30."}
    for n in inv.values():
        if n.kind in prefixes:
            assert n.address is not None and n.address.startswith(prefixes[n.kind])
        else:
            assert n.address is None


def test_county_and_snmp(inv: Inventory) -> None:
    cpes = [inv[nid] for nid in _of(inv, NodeKind.CPE)]
    outside = [n.id for n in cpes if n.in_county is False]
    assert 1 <= len(outside) <= 20
    assert all(n.in_county is not None for n in cpes)
    with_snmp = [n for n in cpes if n.snmp is not None]
    assert [n.id for n in with_snmp] == [f"CPE-{i:04d}" for i in range(30, 594, 30)]
    for n in with_snmp:
        assert n.snmp is not None
        assert (n.snmp.version, n.snmp.community, n.snmp.port, n.snmp.uplink_if) == (
            "2c",
            f"slw-{n.id}",
            SNMP_PORT,
            2,
        )
    assert all(n.snmp is None for n in inv.values() if n.kind is not NodeKind.CPE)


def test_active_intervals(inv: Inventory) -> None:
    late = [n for n in inv.values() if n.commissioned != COMMISSIONED]
    late_cpes = [n for n in late if n.kind is NodeKind.CPE]
    assert 3 <= len(late_cpes) <= 8
    for n in late:
        assert n.commissioned is not None
        assert (
            datetime(2026, 10, 10, tzinfo=CHINA_TZ)
            <= n.commissioned
            < datetime(2026, 10, 20, tzinfo=CHINA_TZ)
        )
    # a late circuit brings its cameras and NVR with it; one camera is added alone to a running circuit
    for cpe in late_cpes:
        assert all(inv[c].commissioned == cpe.commissioned for c in inv.children.get(cpe.id, []))
    lone = [n for n in late if n.kind is NodeKind.CAMERA and inv[n.parent or ""].commissioned == COMMISSIONED]
    assert len(lone) == 1
    gone = [n for n in inv.values() if n.decommissioned is not None]
    gone_cpes = [n for n in gone if n.kind is NodeKind.CPE]
    assert len(gone_cpes) == 2
    for n in gone:
        assert n.decommissioned is not None
        assert (
            datetime(2026, 10, 21, tzinfo=CHINA_TZ)
            <= n.decommissioned
            < datetime(2026, 11, 1, tzinfo=CHINA_TZ)
        )
        assert n.kind is NodeKind.CPE or inv[n.parent or ""].decommissioned == n.decommissioned
    assert all(n.commissioned is not None and n.commissioned.utcoffset() is not None for n in inv.values())


def test_deterministic_from_the_seed(inv: Inventory) -> None:
    again = sample_inventory(2026)
    assert again == inv and list(again) == list(inv)
    other = sample_inventory(7)
    assert other != inv
    assert sum(1 for n in other.values() if n.kind is NodeKind.CPE) == 593
