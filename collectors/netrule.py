"""The network rule: probes and lab devices only ever use allowed networks (loopback unless told otherwise).

One place says what is allowed and how a refusal reads, so the pinger, the SNMP poller, the probers, the live
settings and the lab refuse the same addresses with the same words, before any packet is sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The default: 127.0.0.0/8 and ::1. Tests add networks inside namespaces they create themselves.
LOOPBACK: Final[tuple[str, ...]] = ("127.0.0.0/8", "::1/128")


def parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """CIDR strings (or networks) as networks; host bits are allowed (``127.0.0.1/8`` is 127.0.0.0/8)."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def inside(address: str, networks: Iterable[IPNetwork]) -> bool:
    """True when ``address`` (an IP literal; ValueError otherwise) lies in one of ``networks``."""
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in networks)


def require_inside(address: str, networks: Iterable[IPNetwork], what: str) -> str:
    """``address`` in canonical form, or ValueError naming ``what`` and the allowed networks."""
    nets = tuple(networks)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{what}: {address!r} is not an IP address") from None
    if not any(ip in net for net in nets):
        allowed = ", ".join(str(n) for n in nets)
        raise ValueError(f"{what}: {address} is not inside the allowed networks ({allowed})")
    return str(ip)


def require_loopback(address: str, what: str) -> str:
    """``address`` in canonical form if it is in 127.0.0.0/8 or is ::1 (the lab's own rule), else ValueError."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{what}: {address!r} is not an IP address") from None
    if not ip.is_loopback:
        raise ValueError(f"{what}: {address} is not a loopback address; the lab only touches 127.0.0.0/8 and ::1")
    return str(ip)
