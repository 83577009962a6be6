"""A realistic sample network modelled on the contract (CONTRACT.md §1), deterministic from a seed.

593 circuits (``cpe`` nodes) in the contract's seven tariff lines, monthly fees summing to exactly 61,875 CNY,
spread over 12 townships (``area``, ``T01``..``T12``) and their fibre branches (``T03-B2``); some branches
have a power feed (``T03-B2-P1``) that part of their circuits hang from. Each circuit's CPE carries cameras
(``CAM-0042-3``, 1-8, mostly 4-6) and some an NVR (``NVR-0042``, 4/8/16 channels): about 3,000 channels.

Addresses are all in 127.0.0.0/8 and unique, never 127.0.0.1 nor a host part .0/.255: CPEs 127.10.x.y,
cameras 127.20.x.y, NVRs 127.30.x.y. A few circuits are outside the county. Every 30th CPE has SNMP v2c
settings (community ``slw-<id>``, UDP port 16100, uplink ifIndex 2) so a demo can serve SNMP for a subset.

Everything is commissioned at 2026-01-01T00:00:00+08:00, except a handful of circuits (with their cameras and
NVRs) and one extra camera commissioned in mid-October 2026, and two circuits (with everything on them)
decommissioned in late October 2026.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings

__all__ = [
    "CHINA_TZ",
    "COMMISSIONED",
    "MONTHLY_TOTAL",
    "SNMP_COMMUNITY_PREFIX",
    "SNMP_PORT",
    "TARIFF_LINES",
    "TOWNSHIPS",
    "TariffLine",
    "sample_inventory",
]

CHINA_TZ = timezone(timedelta(hours=8))
COMMISSIONED = datetime(2026, 1, 1, tzinfo=CHINA_TZ)
SNMP_PORT = 16100
SNMP_COMMUNITY_PREFIX = "slw-"
SNMP_EVERY = 30


class TariffLine(NamedTuple):
    """One tariff line (资费标准): number of circuits, their bandwidth and monthly fee (CNY, tax incl.)."""

    label: str
    circuits: int
    bandwidth_mbps: int
    monthly_fee: Decimal


TARIFF_LINES: tuple[TariffLine, ...] = (
    TariffLine("一期链路 phase-1 8M", 198, 8, Decimal(113)),
    TariffLine("一期链路 phase-1 100M", 14, 100, Decimal(120)),
    TariffLine("一期链路 phase-1 1000M", 1, 1000, Decimal(1999)),
    TariffLine("二期链路 phase-2 20M (102)", 42, 20, Decimal(102)),
    TariffLine("二期链路 phase-2 20M (116)", 42, 20, Decimal(116)),
    TariffLine("新增孔道项目 2018 pass-site 20M", 1, 20, Decimal(116)),
    TariffLine("乡镇点位 township camera circuits 10M", 295, 10, Decimal(90)),
)
MONTHLY_TOTAL = Decimal(61875)

TOWNSHIPS: tuple[tuple[str, str], ...] = (
    ("T01", "Chengguan 城关镇"),
    ("T02", "Dongba 东坝镇"),
    ("T03", "Xihe 西河乡"),
    ("T04", "Nanshan 南山镇"),
    ("T05", "Beiling 北岭乡"),
    ("T06", "Qinglong 青龙镇"),
    ("T07", "Baishui 白水乡"),
    ("T08", "Huangtu 黄土乡"),
    ("T09", "Shiqiao 石桥镇"),
    ("T10", "Liujia 刘家乡"),
    ("T11", "Majing 马井镇"),
    ("T12", "Taoyuan 桃源乡"),
)

_SYLLABLES_1 = (
    "Da", "Xiao", "Shang", "Xia", "Dong", "Xi", "Nan", "Bei", "Zhong", "Wang", "Li", "Zhang", "Liu",
    "Chen", "Yang", "Huang", "Zhao", "Zhou", "Wu", "Ma", "Hu", "He", "Gao", "Lin", "Luo", "Song",
)  # fmt: skip
_SYLLABLES_2 = (
    "jia", "zhuang", "wan", "gou", "po", "ping", "ba", "tang", "qiao", "ling", "he", "shan", "yuan",
    "tun", "ying", "kou",
)  # fmt: skip
_CAMERAS_WEIGHTS = {1: 3, 2: 5, 3: 10, 4: 28, 5: 28, 6: 16, 7: 6, 8: 4}
_NVR_CHANNELS_WEIGHTS = {4: 5, 8: 4, 16: 1}


_BLOCK_SIZE = 256 * 254  # host parts .1-.254 of each /24 in a /16
_BLOCKS = {"cpe": (10, 11, 12, 13, 14, 15), "camera": tuple(range(20, 30)), "nvr": tuple(range(30, 40))}


def _address(kind: str, n: int) -> str:
    """The ``n``-th (0-based) address for ``kind``: 127.<block>.x.y over the kind's /16 blocks in turn (CPEs
    127.10-15, cameras 127.20-29, NVRs 127.30-39), skipping host parts .0 and .255."""
    blocks = _BLOCKS[kind]
    b, rest = divmod(n, _BLOCK_SIZE)
    if b >= len(blocks):
        raise ValueError(f"no room for {kind} address #{n} in 127.{blocks[0]}-{blocks[-1]}.0.0/16")
    x, y = divmod(rest, 254)
    return f"127.{blocks[b]}.{x}.{y + 1}"


def _split(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` into ``len(weights)`` parts proportional to the weights, each at least ``minimum``."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError("total too small to split")
    scale = sum(weights)
    raw = [spare * w / scale for w in weights]
    parts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (parts[i] - raw[i], i))
    for i in by_remainder[: spare - sum(parts)]:
        parts[i] += 1
    return [minimum + p for p in parts]


def _pick(rng: random.Random, weights: dict[int, int]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


MAX_SCALE = 60  # 60 counties: ~196,000 polled nodes, inside the address blocks


def sample_inventory(seed: int = 2026, scale: int = 1) -> Inventory:
    """The sample network (see the module doc); the same seed gives the same inventory.

    ``scale`` K builds K counties side by side (a province): the first is the contract's sample as at scale 1,
    each further one is drawn from its own seed, with townships, circuits, cameras and NVRs numbered on
    (``T13``.., ``CPE-0594``..) and addresses taken on from the same loopback blocks.
    """
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be 1..{MAX_SCALE}, got {scale}")
    nodes: list[Node] = []
    counters = {"cpe": 0, "camera": 0, "nvr": 0}
    for county in range(scale):
        _county(random.Random(seed if county == 0 else seed * 1000 + county), county, nodes, counters)
    return Inventory(nodes)


def _county(rng: random.Random, county: int, nodes: list[Node], counters: dict[str, int]) -> None:
    """One county's townships and circuits appended to ``nodes``; ``counters`` number nodes on across counties."""
    offset = counters["cpe"]
    total = sum(t.circuits for t in TARIFF_LINES)
    # Tariff of each circuit in CPE order: the 1000M head-end circuit is CPE-0001 in the county town.
    tariffs = [t for t in TARIFF_LINES for _ in range(t.circuits)]
    head = next(t for t in tariffs if t.bandwidth_mbps == 1000)
    tariffs.remove(head)
    rng.shuffle(tariffs)
    tariffs.insert(0, head)

    area_sizes = _split(total, [rng.uniform(0.6, 1.6) * (1.6 if i == 0 else 1.0) for i in range(12)], 20)

    # Circuits that behave specially (CPE numbers, 1-based); never the head-end nor an SNMP circuit.
    ordinary = [n for n in range(2, total + 1) if (offset + n) % SNMP_EVERY]
    special = rng.sample(ordinary, 16)
    out_of_county = set(special[:7])
    late = {
        n: datetime(2026, 10, 13 + i, 10, 0, tzinfo=CHINA_TZ) for i, n in enumerate(sorted(special[7:12]))
    }
    gone = {
        special[12]: datetime(2026, 10, 26, 18, 0, tzinfo=CHINA_TZ),
        special[13]: datetime(2026, 10, 28, 9, 30, tzinfo=CHINA_TZ),
    }
    extra_camera_at = {special[14]: datetime(2026, 10, 15, 14, 0, tzinfo=CHINA_TZ)}

    def add_circuit(parent: str) -> None:
        counters["cpe"] += 1
        n = counters["cpe"]
        local = n - offset  # the circuit's number inside its county
        tariff = tariffs[local - 1]
        cpe_id = f"CPE-{n:04d}"
        village = f"{rng.choice(_SYLLABLES_1)}{rng.choice(_SYLLABLES_2)}"
        start = late.get(local, COMMISSIONED)
        end = gone.get(local)
        snmp = None
        if n % SNMP_EVERY == 0:
            snmp = SnmpSettings(
                version="2c", community=f"{SNMP_COMMUNITY_PREFIX}{cpe_id}", port=SNMP_PORT, uplink_if=2
            )
        nodes.append(
            Node(
                id=cpe_id,
                kind=NodeKind.CPE,
                parent=parent,
                name=f"{village} Cun {tariff.bandwidth_mbps}M",
                address=_address("cpe", n - 1),
                bandwidth_mbps=tariff.bandwidth_mbps,
                monthly_fee=tariff.monthly_fee,
                in_county=local not in out_of_county,
                commissioned=start,
                decommissioned=end,
                snmp=snmp,
            )
        )
        if tariff.bandwidth_mbps == 1000:
            nvr_channels: int | None = 16
            cameras = 4
        elif tariff.bandwidth_mbps == 100:
            nvr_channels = rng.choice((8, 16))
            cameras = rng.randint(2, 4)
        elif rng.random() < 0.06:
            nvr_channels = _pick(rng, _NVR_CHANNELS_WEIGHTS)
            cameras = rng.randint(0, 2)
        else:
            nvr_channels = None
            cameras = _pick(rng, _CAMERAS_WEIGHTS)
        if local in extra_camera_at:
            cameras = max(cameras, 2)
        for k in range(1, cameras + 1):
            counters["camera"] += 1
            cam_start = start
            if k == cameras and local in extra_camera_at:
                cam_start = extra_camera_at[local]
            nodes.append(
                Node(
                    id=f"CAM-{n:04d}-{k}",
                    kind=NodeKind.CAMERA,
                    parent=cpe_id,
                    name=f"{village} camera {k}",
                    address=_address("camera", counters["camera"] - 1),
                    channels=1,
                    commissioned=cam_start,
                    decommissioned=end,
                )
            )
        if nvr_channels is not None:
            counters["nvr"] += 1
            nodes.append(
                Node(
                    id=f"NVR-{n:04d}",
                    kind=NodeKind.NVR,
                    parent=cpe_id,
                    name=f"{village} NVR",
                    address=_address("nvr", counters["nvr"] - 1),
                    channels=nvr_channels,
                    commissioned=start,
                    decommissioned=end,
                )
            )

    for i, ((_, area_name), size) in enumerate(zip(TOWNSHIPS, area_sizes, strict=True)):
        area_id = f"T{county * len(TOWNSHIPS) + i + 1:02d}"
        if county:
            area_name = f"{area_name} #{county + 1}"
        nodes.append(Node(id=area_id, kind=NodeKind.AREA, name=area_name, commissioned=COMMISSIONED))
        pinyin = area_name.split()[0]
        branch_count = rng.randint(2, 5)
        branch_sizes = _split(size, [rng.uniform(0.5, 1.5) for _ in range(branch_count)], 3)
        for b, branch_size in enumerate(branch_sizes, start=1):
            branch_id = f"{area_id}-B{b}"
            nodes.append(
                Node(
                    id=branch_id,
                    kind=NodeKind.BRANCH,
                    parent=area_id,
                    name=f"{pinyin} fibre branch {b}",
                    commissioned=COMMISSIONED,
                )
            )
            on_feed = 0
            if rng.random() < 0.35:
                on_feed = max(1, round(branch_size * rng.uniform(0.3, 0.6)))
            for _ in range(branch_size - on_feed):
                add_circuit(branch_id)
            if on_feed:
                feed_id = f"{branch_id}-P1"
                nodes.append(
                    Node(
                        id=feed_id,
                        kind=NodeKind.POWER,
                        parent=branch_id,
                        name=f"{pinyin} branch {b} 10kV feeder",
                        commissioned=COMMISSIONED,
                    )
                )
                for _ in range(on_feed):
                    add_circuit(feed_id)
