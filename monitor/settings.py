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
    # Live collection (monitor.live.LiveSettings.from_settings reads these names).
    icmp_interval_s: float = Field(default=60.0, gt=0, description="seconds between ICMP polls of a node")
    snmp_interval_s: float = Field(default=300.0, gt=0, description="seconds between SNMP polls of a CPE")
    suspect_interval_s: float = Field(default=15.0, gt=0, description="re-poll interval while suspect or down")
    icmp_count: int = Field(default=3, ge=1, description="echo requests per ICMP poll")
    icmp_spacing_s: float = Field(default=0.2, ge=0, description="seconds between a poll's echo requests")
    icmp_timeout_s: float = Field(default=1.0, gt=0, description="seconds to wait for each echo reply")
    rate_pps: float = Field(default=2000.0, gt=0, description="global send rate limit, packets per second")
    sentinels: list[str] = Field(
        default=["127.0.0.1"], description="addresses whose total silence means the collector is blind"
    )
    blind_after: int = Field(default=3, ge=1, description="intervals without a result before a node is unknown")
    tick_s: float = Field(default=1.0, gt=0, description="seconds between scheduler ticks")
    snmp_timeout_s: float = Field(default=2.0, gt=0)
    snmp_retries: int = Field(default=1, ge=0)
    allowed_networks: list[str] = Field(
        default=["127.0.0.0/8", "::1/128"],
        description="the only networks probes may go to (the network rule: loopback unless told otherwise)",
    )
    api_host: str = Field(default="127.0.0.1")
    api_port: int = Field(default=8080, gt=0, lt=65536)
    # What the API accepts (SPEC R8, R9, R10).
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="the largest request body (bytes) except evidence uploads: 413 above"
    )
    max_evidence_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="the largest evidence file (bytes) uploaded: 413 above"
    )
    max_clock_skew_s: float = Field(
        default=300.0, ge=0, description="how far after its receipt an event posted to the API may be dated (s)"
    )
    max_backdate_s: float = Field(
        default=3600.0, ge=0, description="how far before its receipt a collector's state or poll may be dated (s)"
    )
    report_cache_s: float = Field(
        default=60.0,
        ge=0,
        description="a month's report asked as of now is served from memory while nothing was stored since and it"
        " is at most this old (s); 0: always computed (monitor.report_cache)",
    )
    report_cache_entries: int = Field(
        default=2, ge=0, description="computed month reports kept in memory (each ~0.4 GB at 100,000 channels)"
    )
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


class AlertSettings(BaseSettings):
    """Alerts to on-call crews (``monitor.alerts``): where the rules are, how the outbox is delivered, how the
    one-tap acknowledgement links are signed. Read from ``SLAWATCH_ALERT_*``; without ``rules_file`` no
    alert is planned or written."""

    model_config = SettingsConfigDict(env_prefix="SLAWATCH_ALERT_", env_file=".env", extra="ignore")

    rules_file: Path | None = Field(
        default=None, description="YAML alert rules and targets (monitor.alerts.rules); none: no alerts"
    )
    secret: str | None = Field(
        default=None, description="server secret that signs one-tap acknowledgement links (HMAC-SHA256)"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8080", description="the base URL crews reach slawatch at (ack links)"
    )
    ack_ttl_s: float = Field(default=24 * 3600.0, gt=0, description="how long a one-tap ack link is valid (s)")
    max_attempts: int = Field(default=8, ge=1, description="failed deliveries of one message before it is parked")
    backoff_s: float = Field(default=2.0, gt=0, description="first retry delay; doubled after every failure")
    backoff_max_s: float = Field(default=600.0, gt=0, description="the longest retry delay (s)")
    poll_s: float = Field(default=1.0, gt=0, description="seconds between delivery rounds")
    timeout_s: float = Field(default=10.0, gt=0, description="seconds one delivery may take")
    horizon_s: float = Field(
        default=3600.0, ge=0, description="an incident first seen ended longer ago than this is not alerted (s)"
    )
    alertmanager_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="how often open incidents are re-posted to Alertmanager; each post is valid 4 times as long",
    )
