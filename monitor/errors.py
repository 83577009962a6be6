"""slawatch's own exceptions, so that callers can tell kinds of failure apart.

    SlawatchError
    ├── InputError            bad input from a file or a request; names where (file, line, field)
    │   ├── InventoryError    an inventory that does not validate (duplicate, missing parent, cycle, ...)
    │   ├── EventError        an event that does not validate or cannot apply
    │   ├── PolicyError       a policy file with a bad or missing value
    │   └── ContractError     a contract declaration that does not validate or select
    ├── StorageError          the database refused or is not at the expected schema
    └── SnapshotError         a stored projection snapshot that cannot be used (its events are replayed)

Collector errors (timeout, unreachable, auth failure, bad data) live in ``collectors.errors``.
"""

from __future__ import annotations


class SlawatchError(Exception):
    """Base of every error slawatch raises on purpose."""


class InputError(SlawatchError):
    """Bad input. ``where`` is ``file:line`` (or a request field) when known, ``field`` the offending field."""

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.where = where
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.field:
            parts.append(f"field {self.field!r}")
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class InventoryError(InputError):
    """An inventory that does not validate."""


class EventError(InputError):
    """An event that does not validate."""


class PolicyError(InputError):
    """A policy with a bad or missing value."""


class ContractError(InputError):
    """A contract that does not validate, or an ambiguous contract selection."""


class StorageError(SlawatchError):
    """The database refused an operation or is at an unexpected schema."""


class SnapshotError(SlawatchError):
    """A stored projection snapshot that cannot be used: corrupt, of another format, or naming a class slawatch
    does not allow (:mod:`monitor.snapshot`). Never fatal: the stored events are replayed instead."""


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message names what it refuses but never echoes a huge
    input (a 5,000-character node id came back whole in a 422, twice over)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
