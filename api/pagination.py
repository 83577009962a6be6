"""Keyset pagination shared by the list routes (incidents, audit, inventory): opaque cursors and the one-extra-row page.

A route asks its query for ``limit + 1`` rows; :func:`page` keeps ``limit`` of them and says whether more follow.
A cursor is the route's own key, as bytes, in unpadded URL-safe base64; one the API did not give is a 422.
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from api.errors import ApiError
from monitor.errors import InputError

T = TypeVar("T")
K = TypeVar("K")


def encode_cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def number_cursor(kind: str, n: int) -> str:
    """A cursor naming position ``n`` (a non-negative integer) of a ``kind`` of list."""
    return encode_cursor(f"{kind}:{n}".encode())


def number_key(kind: str, digits: int) -> Callable[[bytes], int]:
    """The parser of :func:`number_cursor`'s cursors of ``kind``: at most ``digits`` decimal digits."""

    def parse(raw: bytes) -> int:
        text = raw.decode("ascii")
        named, _, n = text.partition(":")
        if named != kind or not n.isdigit() or len(n) > digits:
            raise ValueError(text)
        return int(n)

    return parse


def decode_cursor(cursor: str, parse: Callable[[bytes], K]) -> K:
    """``parse`` of the cursor's bytes; whatever it (or the base64) refuses is a 422 on the ``cursor`` query field."""
    try:
        return parse(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError, InputError, UnicodeDecodeError):
        raise ApiError(
            422, "not a cursor this API gave (pass next_cursor as is)", where="query", field="cursor"
        ) from None


def page(rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched as ``limit + 1``) and the next page's cursor, if there is one."""
    more = len(rows) > limit
    kept = list(rows[:limit])
    return kept, cursor_of(kept[-1]) if more and kept else None
