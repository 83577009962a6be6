"""Engine creation, schema upgrades and the translation of driver errors into :class:`StorageError`.

Typical use::

    db = Database(default_database_url(data_dir))   # or "postgresql+asyncpg://user:pw@host/db"
    await db.connect()                              # StorageError if the database cannot be reached
    await db.upgrade()                              # Alembic to head; idempotent
    repo = db.repository()
    ...
    await db.close()

or ``async with Database(url) as db: ...`` (connects, and closes on exit; it does not upgrade).

Only ``sqlite+aiosqlite`` and ``postgresql+asyncpg`` URLs are supported. On SQLite every connection gets
``PRAGMA foreign_keys=ON`` and WAL journaling, and transactions are real ones: a read transaction is
``BEGIN``, a write transaction ``BEGIN IMMEDIATE`` (so a read-then-write cannot interleave with another
writer). Error messages show the URL without its password; SNMP secrets and other parameters of a failed
statement are never put in a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import migrations
from monitor.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

    from monitor.storage.repository import Repository

__all__ = ["SUPPORTED_DRIVERS", "Database", "default_database_url", "display_url", "translate_errors"]

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")

#: Execution option that makes a SQLite transaction ``BEGIN IMMEDIATE`` (take the write lock up front).
WRITE_OPTION = "slawatch_write"


def default_database_url(data_dir: Path) -> str:
    """The SQLite database inside ``data_dir``: ``sqlite+aiosqlite:///{data_dir}/slawatch.db``."""
    return f"sqlite+aiosqlite:///{data_dir}/slawatch.db"


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    """The driver's own message, first line only (never the statement or its parameters)."""
    orig: BaseException = exc
    wrapped = getattr(exc, "orig", None)  # DBAPIError and StatementError wrap the original error
    if isinstance(wrapped, BaseException):
        orig = wrapped
    message = str(orig).strip().splitlines()
    first = message[0] if message else type(orig).__name__
    # asyncpg errors adapted by SQLAlchemy read "<class 'asyncpg.exceptions.X'>: message".
    if first.startswith("<class '") and ">: " in first:
        first = first.split(">: ", 1)[1]
    return first


_NO_SCHEMA_MARKERS = ("no such table", "does not exist", "undefinedtable")


@contextmanager
def translate_errors(action: str, url: str) -> Iterator[None]:
    """Turn driver and SQLAlchemy errors raised inside the block into :class:`StorageError`.

    ``action`` says what was being done ("append events"); ``url`` is the display URL.
    """
    try:
        yield
    except StorageError:
        raise
    except IntegrityError as exc:
        raise StorageError(f"the database at {url} refused to {action}: {_reason(exc)}") from exc
    except (OperationalError, InterfaceError, ProgrammingError) as exc:
        reason = _reason(exc)
        lowered = f"{reason} {type(getattr(exc, 'orig', exc)).__name__}".lower()
        if any(marker in lowered for marker in _NO_SCHEMA_MARKERS):
            raise StorageError(
                f"cannot {action}: the database at {url} does not have the slawatch schema ({reason}); "
                "upgrade it first"
            ) from exc
        if isinstance(exc, OperationalError | InterfaceError):
            raise StorageError(f"cannot reach the database at {url} to {action}: {reason}") from exc
        raise StorageError(f"cannot {action} in the database at {url}: {reason}") from exc
    except (OSError, ConnectionError) as exc:
        raise StorageError(f"cannot reach the database at {url}: {_reason(exc)}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot {action} in the database at {url}: {_reason(exc)}") from exc


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver (so BEGIN is emitted by the "begin" hook below), then
    # enforce foreign keys and use WAL journaling.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


_REVISION_RE = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)\s*$', re.MULTILINE)


def packaged_head() -> str | None:
    """The newest packaged revision, read from the migration files' ``revision``/``down_revision`` lines without
    loading Alembic (about half a second of imports a command like ``slawatch status`` need not pay when the
    database is current); None when the files do not give one head, and Alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (Path(migrations.__file__).parent / "versions").glob("*.py"):
        for key, value in _REVISION_RE.findall(path.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _alembic_config() -> Config:
    from alembic.config import Config

    here = Path(migrations.__file__).parent
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("prepend_sys_path", "")  # the package is importable already; leave sys.path alone
    return cfg


def head_revision() -> str:
    """The newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise StorageError("the packaged migrations have no head revision")
    return head


def _upgrade(sync_conn: Connection, revision: str) -> None:
    from alembic import command

    cfg = _alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


def _current_revision(sync_conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(sync_conn).get_current_revision()


class Database:
    """One database: its engine (after :meth:`connect`), schema upgrades and a :class:`Repository`."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StorageError(f"{display_url(url)!s} is not a database URL") from None
        if parsed.drivername not in SUPPORTED_DRIVERS:
            raise StorageError(
                f"unsupported database URL {display_url(parsed)}: use one of "
                + ", ".join(f"{d}://..." for d in SUPPORTED_DRIVERS)
            )
        self._url = parsed
        self._echo = echo
        self._engine: AsyncEngine | None = None

    @property
    def url(self) -> str:
        """The URL with its password hidden."""
        return display_url(self._url)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StorageError(f"the database at {self.url} is not connected (call connect() first)")
        return self._engine

    async def connect(self) -> None:
        """Create the engine and check that the database answers. Idempotent."""
        if self._engine is not None:
            return
        # hide_parameters: statement parameters (SNMP secrets among them) never reach logs or messages.
        kwargs: dict[str, Any] = {"echo": self._echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            database = self._url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(f"cannot create the directory of {self.url}: {exc}") from exc
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_async_engine(self._url, **kwargs)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StorageError(f"cannot use the database URL {self.url}: {exc}") from exc
        if self.dialect == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        try:
            with translate_errors("connect", self.url):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except StorageError as exc:
            await engine.dispose()
            cause = exc.__cause__
            reason = _reason(cause) if cause is not None else str(exc)
            raise StorageError(f"cannot reach the database at {self.url}: {reason}") from cause
        self._engine = engine

    async def upgrade(self, revision: str = "head") -> None:
        """Run the packaged Alembic migrations up to ``revision`` (default head). Idempotent: a database already
        at the packaged head is left alone without loading Alembic."""
        if revision == "head" and await self._at_head():
            return
        engine = self.engine
        with translate_errors(f"upgrade the schema to {revision}", self.url):
            async with engine.connect() as conn:
                await conn.run_sync(_upgrade, revision)
                await conn.commit()

    async def _at_head(self) -> bool:
        head = packaged_head()
        if head is None:
            return False
        try:
            async with self.engine.connect() as conn:
                found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        except SQLAlchemyError:  # no version table yet: a new database
            return False
        return found == [head]

    async def current_revision(self) -> str | None:
        """The schema revision stored in the database (``None``: never upgraded)."""
        with translate_errors("read the schema revision", self.url):
            async with self.engine.connect() as conn:
                return await conn.run_sync(_current_revision)

    async def check_schema(self) -> None:
        """Raise :class:`StorageError` unless the database is at the packaged head revision."""
        current = await self.current_revision()
        head = head_revision()
        if current != head:
            found = "no slawatch schema" if current is None else f"schema revision {current}"
            raise StorageError(
                f"the database at {self.url} has {found}, this slawatch needs {head}: upgrade it first"
            )

    def repository(self) -> Repository:
        from monitor.storage.repository import Repository

        return Repository(self.engine, self.url)

    async def close(self) -> None:
        """Dispose of the engine and its connections. Idempotent."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
