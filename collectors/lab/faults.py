"""The lab's packet drops: one nftables table (``inet slawatch_lab`` by default), driven with ``nft``.

The table has two sets, ``failed`` (IPv4) and ``failed6`` (IPv6), and an input chain that silently drops
ICMP echo requests and UDP arriving on ``lo`` for their elements (the text is :func:`~collectors.lab.network.
nft_ruleset`). Loopback answers pings for all of 127.0.0.0/8 by itself, so a "dead" device is just a set
element: pings and SNMP GETs to it time out. :meth:`NftFaults.apply` replaces the elements in one ``nft -f``
transaction (flush + add), so a poll never sees a half-applied change. Only loopback addresses are accepted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable

from collectors.lab.network import DEFAULT_TABLE, check_table_name, nft_ruleset, nft_set_script

__all__ = ["NftError", "NftFaults", "nft_path"]

_TIMEOUT_S = 30


class NftError(RuntimeError):
    """``nft`` is missing or refused a command (its message is included)."""


def nft_path() -> str | None:
    for candidate in (shutil.which("nft"), "/usr/sbin/nft", "/sbin/nft"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


class NftFaults:
    """The lab table ``inet <table>``: create it, set the silenced addresses, list them, delete it."""

    def __init__(self, table: str = DEFAULT_TABLE, nft: str | None = None) -> None:
        self.table = check_table_name(table)
        found = nft or nft_path()
        if found is None:
            raise NftError("nft not found: install nftables (Debian package 'nftables')")
        self._nft = found

    def _run(self, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self._nft, *args] if script is None else [self._nft, "-f", "-"]
        proc = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
        return proc

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise NftError(f"nft {what} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def create(self, addresses: Iterable[str] = ()) -> None:
        """Create (or re-create from scratch) the table with ``addresses`` silenced."""
        self._check(self._run(script=nft_ruleset(self.table, addresses)), f"create table inet {self.table}")

    def apply(self, addresses: Iterable[str]) -> None:
        """Silence exactly ``addresses`` from now on (atomically: one transaction)."""
        self._check(self._run(script=nft_set_script(self.table, addresses)), f"update table inet {self.table}")

    def exists(self) -> bool:
        return self._run("list", "table", "inet", self.table).returncode == 0

    def elements(self) -> set[str]:
        """The addresses silenced now, read back from the kernel."""
        out: set[str] = set()
        for name in ("failed", "failed6"):
            proc = self._run("-j", "list", "set", "inet", self.table, name)
            self._check(proc, f"list set {name}")
            for item in json.loads(proc.stdout).get("nftables", []):
                for elem in item.get("set", {}).get("elem", []):
                    if isinstance(elem, str):
                        out.add(elem)
        return out

    def delete(self) -> bool:
        """Delete the table if it exists; True if it did."""
        if not self.exists():
            return False
        self._check(self._run("delete", "table", "inet", self.table), f"delete table inet {self.table}")
        return True
