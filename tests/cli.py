"""Running the ``slawatch`` command in-process for tests (with the ``env`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from typer.testing import CliRunner

from monitor.cli import app


def run(*args: str) -> tuple[int, str, str]:
    """``slawatch ARGS``: exit code, standard output, standard error."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr
