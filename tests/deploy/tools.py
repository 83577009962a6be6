"""Debian's Prometheus tools for the deploy tests: skipped when missing, except under ``CI=true``."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_HINT = "install Debian's prometheus (apt-get install prometheus), or run scripts/setup-system as root"


def tool(name: str) -> str:
    """The path of ``name`` (``promtool``, ``prometheus``); skip the test when missing, fail under CI=true."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed; {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: this test must run, not skip)")
        pytest.skip(message)
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
