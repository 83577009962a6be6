"""The short-lived cache of valid API tokens (monitor.storage.token_cache), alone and behind
``Repository.active_token`` on SQLite and PostgreSQL: a revocation through this process ends a token at once,
an expiry is checked at every use, one by another process is seen within the cache's lifetime (its clock is
the test's), and the cache stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.storage import Database, Repository
from monitor.storage.token_cache import TOKEN_CACHE_S, TOKENS, TokenCache

T0 = datetime(2026, 10, 3, tzinfo=UTC)


@dataclass
class Ticks:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ticks]:
    """The process's token cache on a clock the test moves."""
    clock = Ticks()
    monkeypatch.setattr(TOKENS, "clock", clock)
    yield clock


async def test_a_found_token_is_kept_until_its_lifetime_ends(db: Database, repo: Repository, ticks: Ticks) -> None:
    secret = await repo.create_token("phone", "viewer")
    assert await repo.active_token(secret, T0) == ("phone", "viewer")
    # Another process revokes it (straight in the table): this process answers from its cache for a while...
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE tokens SET revoked_at = created_at WHERE name = 'phone'"))
    ticks.now += TOKEN_CACHE_S / 2
    assert await repo.active_token(secret, T0) == ("phone", "viewer")
    # ... and asks the database again once the lifetime is over.
    ticks.now += TOKEN_CACHE_S / 2
    assert await repo.active_token(secret, T0) is None
    assert await repo.active_token(secret, T0) is None  # a refused token is never kept


async def test_a_revocation_here_ends_a_kept_token_at_once(db: Database, repo: Repository, ticks: Ticks) -> None:
    first = await repo.create_token("phone", "viewer")
    second = await repo.create_token("laptop", "operator")
    assert await repo.active_token(first, T0) == ("phone", "viewer")
    assert await repo.active_token(second, T0) == ("laptop", "operator")
    assert await repo.revoke_token_by("phone", "admin") is not None
    assert await repo.active_token(first, T0) is None
    assert await repo.active_token(second, T0) == ("laptop", "operator")
    # Through another repository of the same database in this process (the CLI's, a second service) as well.
    assert await db.repository().revoke_token("laptop") is True
    assert await repo.active_token(second, T0) is None


async def test_an_expiry_is_checked_at_every_use(repo: Repository, ticks: Ticks) -> None:
    secret, _ = await repo.create_expiring_token("crew", "operator", T0 + timedelta(hours=1))
    assert await repo.active_token(secret, T0) == ("crew", "operator")
    assert await repo.active_token(secret, T0 + timedelta(hours=1)) is None
    assert await repo.active_token(secret, T0 + timedelta(minutes=59)) == ("crew", "operator")


async def test_unknown_secrets_are_not_kept(repo: Repository) -> None:
    before = len(TOKENS)
    for n in range(20):
        assert await repo.active_token(f"not-a-token-{n}", T0) is None
    assert len(TOKENS) == before


def test_the_cache_is_bounded_and_per_database() -> None:
    ticks = Ticks()
    cache = TokenCache(ttl_s=2.0, size=2, clock=ticks)
    for name in ("a", "b", "c"):
        cache.put("db1", name, name, "viewer", None, generation=cache.generation("db1"))
    assert len(cache) == 2
    assert cache.get("db1", "a", T0) is None  # the least recently found went first
    assert cache.get("db1", "c", T0) == ("c", "viewer")
    assert cache.get("db2", "c", T0) is None
    cache.put("db2", "c", "other", "admin", None, generation=cache.generation("db2"))
    cache.forget("db1")
    assert cache.get("db1", "c", T0) is None
    assert cache.get("db2", "c", T0) == ("other", "admin")


def test_an_answer_read_before_a_revocation_is_not_kept() -> None:
    cache = TokenCache(clock=Ticks())
    generation = cache.generation("db")  # a lookup starts and reads the database ...
    cache.forget("db")  # ... a revocation is stored meanwhile ...
    cache.put("db", "h", "phone", "viewer", None, generation=generation)  # ... its answer comes back stale
    assert cache.get("db", "h", T0) is None
    cache.put("db", "h", "phone", "viewer", None, generation=cache.generation("db"))
    assert cache.get("db", "h", T0) == ("phone", "viewer")
