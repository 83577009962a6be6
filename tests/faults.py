"""Faults injected in the database itself (not by patching Python): a trigger that refuses every insert."""

from __future__ import annotations

from sqlalchemy import text

from monitor.storage import Database


async def refuse_inserts(db: Database, table: str, on: bool) -> None:
    """Make every insert into ``table`` fail (``on``), or stop doing so; SQLite and PostgreSQL."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            if on:
                await conn.execute(
                    text(
                        "CREATE FUNCTION slawatch_refuse() RETURNS trigger AS "
                        "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql"
                    )
                )
                await conn.execute(
                    text(
                        f"CREATE TRIGGER slawatch_refuse BEFORE INSERT ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION slawatch_refuse()"
                    )
                )
            else:
                await conn.execute(text(f"DROP TRIGGER slawatch_refuse ON {table}"))
                await conn.execute(text("DROP FUNCTION slawatch_refuse()"))
        elif on:
            await conn.execute(
                text(
                    f"CREATE TRIGGER slawatch_refuse BEFORE INSERT ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                )
            )
        else:
            await conn.execute(text("DROP TRIGGER slawatch_refuse"))
