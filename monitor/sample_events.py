"""A realistic month of events for an inventory: faults, cuts, acknowledgements, exclusions, maintenance.

Deterministic from a seed, so the demo, the tests and the replay benchmark see the same month. The mix is
what a county network sees: many single-camera faults, some CPE power losses, a few branch fibre cuts, a
township power cut excluded as third-party, planned work, a blind collector, raw polls, manual findings.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from monitor.events import format_time
from monitor.inventory import Inventory, NodeKind


def month_events(
    inventory: Inventory, start: datetime, days: int = 31, seed: int = 7, scale: float = 1.0
) -> list[dict[str, Any]]:
    """JSON-ready events over ``[start, start + days)``, in time order. ``scale`` multiplies the fault counts."""
    rng = random.Random(seed)
    span = timedelta(days=days).total_seconds()
    nodes = inventory.nodes()
    cameras = [n.id for n in nodes if n.kind in (NodeKind.CAMERA, NodeKind.NVR)]
    cpes = [n.id for n in nodes if n.kind is NodeKind.CPE]
    branches = [n.id for n in nodes if n.kind is NodeKind.BRANCH]
    areas = [n.id for n in nodes if n.parent is None]
    out: list[dict[str, Any]] = []
    busy: dict[str, list[tuple[float, float]]] = {}

    def free(node: str, a: float, b: float) -> bool:
        return all(b <= x or a >= y for x, y in busy.get(node, []))

    def at(offset: float) -> str:
        return format_time(start + timedelta(seconds=round(offset)))

    def outage(
        node: str, dur_range: tuple[float, float], *, ack: bool = True, explain: bool = False
    ) -> float | None:
        for _ in range(20):
            a = rng.uniform(0, span - 3600)
            b = min(span - 60, a + rng.uniform(*dur_range))
            if free(node, a - 600, b + 600):
                break
        else:
            return None
        busy.setdefault(node, []).append((a, b))
        out.append({"type": "state", "at": at(a), "node": node, "state": "down"})
        out.append({"type": "state", "at": at(b), "node": node, "state": "up"})
        if ack and rng.random() < 0.97:
            # Crews acknowledge within the outage: mostly in 5-45 min, now and then hours late.
            late = rng.random() < 0.05
            ack_at = a + min(
                (b - a) * 0.9, rng.uniform(4 * 3600, 7 * 3600) if late else rng.uniform(300, 2700)
            )
            out.append({"type": "ack", "at": at(ack_at), "node": node, "by": f"crew-{rng.randint(1, 6)}"})
            if rng.random() < 0.5:
                out.append({"type": "onsite", "at": at((ack_at + b) / 2), "node": node, "by": "crew"})
        if explain:
            out.append(
                {"type": "explanation", "at": at(b + 600), "node": node, "text": "written report filed"}
            )
        return a

    for cam in rng.sample(cameras, min(len(cameras), int(1100 * scale))):
        outage(cam, (600, 4 * 3600), ack=rng.random() < 0.95)
    for cpe in rng.sample(cpes, min(len(cpes), int(260 * scale))):
        outage(cpe, (900, 5 * 3600))
    for br in rng.sample(branches, min(len(branches), max(1, int(8 * scale)))):
        outage(br, (1 * 3600, 7 * 3600), explain=rng.random() < 0.5)
    if areas:
        area = rng.choice(areas)
        a = outage(area, (3 * 3600, 9 * 3600))
        if a is not None:
            out.append(
                {
                    "type": "exclusion",
                    "at": at(a + 3600 * 10),
                    "node": area,
                    "cause": "grid power cut (停电), utility notice attached",
                    "evidence": "photos/power-cut.jpg",
                    "status": "requested",
                }
            )
            out.append(
                {
                    "type": "exclusion",
                    "at": at(a + 3600 * 30),
                    "node": area,
                    "cause": "signed",
                    "status": "approved",
                }
            )
        blind_area = rng.choice(areas)
        b0 = rng.uniform(0, span - 7200)
        out.append({"type": "state", "at": at(b0), "node": blind_area, "state": "unknown"})
        out.append({"type": "state", "at": at(b0 + 1500), "node": blind_area, "state": "up"})
        mscope = rng.choice(branches or areas)
        m0 = rng.uniform(0, span - 8 * 3600)
        out.append(
            {
                "type": "maintenance",
                "from": at(m0),
                "to": at(m0 + 4 * 3600),
                "scope": mscope,
                "reason": "planned fibre re-splicing, consented",
            }
        )
    # Raw polls for a few CPEs: three failures confirm down (dated at the first), two successes confirm up.
    for cpe in rng.sample(cpes, min(len(cpes), 20)):
        a = rng.uniform(0, span - 3 * 3600)
        if not free(cpe, a - 600, a + 3000):
            continue
        busy.setdefault(cpe, []).append((a, a + 2400))
        for k in range(3):
            out.append({"type": "poll", "at": at(a + 60 * k), "node": cpe, "ok": False})
        for k in range(2):
            out.append({"type": "poll", "at": at(a + 2400 + 60 * k), "node": cpe, "ok": True, "rtt_ms": 1.5})
    for item, points, note in (
        ("4c", 5, "valid complaint: camera T03 offline two days"),
        ("4e", 0.5, "ledger gap"),
    ):
        out.append(
            {"type": "finding", "at": at(rng.uniform(0, span)), "item": item, "points": points, "note": note}
        )
    out.sort(key=lambda e: e.get("at") or e["from"])
    return out
