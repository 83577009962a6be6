"""Deployment settings, from the environment (``SLAWATCH_*``) or a ``.env`` file; validated on load.

Polling and confirmation settings belong to the network (one set per deployment, SPEC §2); assessment
numbers belong to each contract's policy (``monitor.policy``). Nothing here is created at import time:
the CLI and the API build one :class:`Settings` and pass it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLAWATCH_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="where the SQLite database and evidence live")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default: SQLite in data_dir (sqlite+aiosqlite:///...)",
    )
    policy_file: Path | None = Field(default=None, description="YAML policy for the default contract")
    down_after: int = Field(default=3, ge=1, description="consecutive failed polls before a node is down")
    up_after: int = Field(default=2, ge=1, description="consecutive good polls before a node is up")
    api_host: str = Field(default="127.0.0.1")
    api_port: int = Field(default=8080, gt=0, lt=65536)
    log_level: str = Field(default="INFO")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'slawatch.db').resolve()}"
