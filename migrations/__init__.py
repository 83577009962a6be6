"""slawatch's Alembic migrations (shipped inside the package; see ``alembic.ini`` in this directory).

Programmatic use: :meth:`monitor.storage.database.Database.upgrade`. From a shell::

    alembic -c migrations/alembic.ini -x url=sqlite+aiosqlite:///data/slawatch.db upgrade head

(or set ``SLAWATCH_DATABASE_URL`` instead of ``-x url=...``).
"""
