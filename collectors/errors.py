"""Exceptions raised by the collectors (ICMP, SNMP, ...).

Every collector raises only subclasses of :class:`CollectorError`, so a caller can catch all collector
failures with one ``except CollectorError`` and still tell them apart::

    CollectorError                  base: anything a collector can raise on purpose
    ├── ProbeTimeout                the device did not answer within the timeout (seconds)
    ├── Unreachable                 no route / host or network unreachable / address family unavailable
    ├── AuthFailure                 the device answered but refused our credentials (community, USM user)
    ├── BadData                     the device answered with something we cannot decode or that is invalid
    └── PermissionDenied            this process lacks an OS privilege the collector needs (raw sockets,
                                    ...); the message says exactly what to grant

Invalid arguments from the caller (for example a destination outside the allowed networks) are programming
errors and raise the built-in ``ValueError``, not a ``CollectorError``.
"""

from __future__ import annotations

__all__ = [
    "AuthFailure",
    "BadData",
    "CollectorError",
    "PermissionDenied",
    "ProbeTimeout",
    "Unreachable",
]


class CollectorError(Exception):
    """Base class of all collector errors.

    ``target`` is the address (or name) of the probed device when the error concerns one device, else None.
    """

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class ProbeTimeout(CollectorError):
    """The device did not answer within the configured timeout."""


class Unreachable(CollectorError):
    """The device cannot be reached: no route, host/network unreachable, or address family unavailable."""


class AuthFailure(CollectorError):
    """The device refused our credentials (wrong SNMP community, unknown USM user, wrong key, ...)."""


class BadData(CollectorError):
    """The device answered with data that cannot be decoded or fails validation."""


class PermissionDenied(CollectorError):
    """The process lacks an OS privilege the collector needs; the message states the remedy."""
