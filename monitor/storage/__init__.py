"""slawatch's storage: the schema (:mod:`.tables`), the database (:mod:`.database`) and the repository.

Use::

    db = Database(default_database_url(data_dir))
    await db.connect()
    await db.upgrade()
    repo = db.repository()
"""

from monitor.storage.database import Database, default_database_url, display_url, head_revision
from monitor.storage.repository import (
    CONTRACT_KEYS,
    AuditEntry,
    EvidenceFile,
    Repository,
    StoredReport,
    TokenInfo,
)

__all__ = [
    "CONTRACT_KEYS",
    "AuditEntry",
    "Database",
    "EvidenceFile",
    "Repository",
    "StoredReport",
    "TokenInfo",
    "default_database_url",
    "display_url",
    "head_revision",
]
