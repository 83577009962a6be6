"""A short-lived, bounded cache of the API tokens found valid, shared by every repository of this process.

Every API request looks its bearer token up. On SQLite that lookup is a read transaction through aiosqlite's
thread, ~1.1 ms of CPU: as much as the rest of a node's status, a fifth of a page of 100 incidents
(``benchmarks/README.md``, ``bench_api.py``). :meth:`Repository.active_token
<monitor.storage.repository.Repository.active_token>` answers from here when it looked the same secret up
less than :data:`TOKEN_CACHE_S` ago, and asks the database otherwise.

What it keeps and what it does not:

* only tokens found valid (name, role, expiry), by the sha256 of their secret (never the secret): an unknown,
  revoked or expired secret is asked of the database every time, so a token just created by another process
  works at once, and a flood of wrong secrets neither fills the cache nor is answered from it;
* the expiry is checked against the caller's ``now`` at every use, as the database query does;
* a revocation through any repository of this process (the API's ``DELETE /tokens/{name}``) forgets the
  database's entries when it is stored, and a lookup that began before it does not put its answer back;
* a revocation by another process (``slawatch token revoke`` beside a running API) takes effect within
  :data:`TOKEN_CACHE_S`: that is the documented bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["TOKENS", "TOKEN_CACHE_S", "TOKEN_CACHE_SIZE", "TokenCache"]

#: How long (s) a token found valid is trusted without asking the database again. Short, because it is how
#: long a revocation by another process may go unnoticed; long enough that a client sending hundreds of
#: requests a second costs one lookup per this many seconds instead of one per request.
TOKEN_CACHE_S = 2.0
#: At most this many tokens are kept (the least recently found dropped first): a deployment has tens.
TOKEN_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    role: str
    expires_at: datetime | None
    found: float  # the cache's clock when the database said it was valid


class TokenCache:
    """Valid tokens by (database URL, sha256 of the secret), each for ``ttl_s`` seconds of ``clock``."""

    def __init__(
        self,
        ttl_s: float = TOKEN_CACHE_S,
        size: int = TOKEN_CACHE_SIZE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("a token cache holds at least one token")
        self.ttl_s = ttl_s
        self.size = size
        self.clock = clock  # monotonic seconds (tests move their own)
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        # Bumped per database by every revocation: a lookup that read the database before it must not put
        # its (now stale) answer back after it.
        self._generations: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def generation(self, url: str) -> int:
        """Take before asking the database; give to :meth:`put` with its answer."""
        return self._generations.get(url, 0)

    def get(self, url: str, digest: str, now: datetime) -> tuple[str, str] | None:
        """``(name, role)`` if the token was found valid less than ``ttl_s`` ago and has not expired at ``now``;
        None: ask the database."""
        key = (url, digest)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry.found >= self.ttl_s:
            del self._entries[key]
            return None
        if entry.expires_at is not None and entry.expires_at <= now:
            return None  # expired since: the database says so too (and the caller is refused)
        self._entries.move_to_end(key)
        return entry.name, entry.role

    def put(
        self, url: str, digest: str, name: str, role: str, expires_at: datetime | None, *, generation: int
    ) -> None:
        """Keep a token the database found valid, unless a revocation was stored since ``generation``."""
        if generation != self.generation(url):
            return
        key = (url, digest)
        self._entries[key] = _Entry(name, role, expires_at, self.clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, url: str) -> None:
        """A token of the database at ``url`` was revoked: drop its entries and refuse answers read before."""
        self._generations[url] = self.generation(url) + 1
        for key in [k for k in self._entries if k[0] == url]:
            del self._entries[key]


#: The process's cache, shared by every :class:`~monitor.storage.repository.Repository` (a revocation through
#: any of them is seen by all of them at once).
TOKENS = TokenCache()
