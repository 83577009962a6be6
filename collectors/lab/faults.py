"""The lab's packet drops: one nftables table (``inet slawatch_lab`` by default), driven with ``nft``.

Sets ``failed`` (IPv4) and ``failed6`` (IPv6): an input chain silently drops ICMP echo requests and UDP
arriving on ``lo`` for their elements. Sets ``blind``/``blind6`` (the collector's sentinels): echo requests
only. The text is :func:`~collectors.lab.network.nft_ruleset`. Loopback answers pings for all of 127.0.0.0/8
by itself, so a "dead" device is just a set element: pings and SNMP GETs to it time out.
:meth:`NftFaults.apply` replaces the elements in one ``nft -f`` transaction (flush + add), so a poll never
sees a half-applied change. Only loopback addresses are accepted.
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
    """Absolute path of ``nft`` (PATH, then /usr/sbin and /sbin), or None when nftables is not installed."""
    return shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")


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
        return subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise NftError(f"nft {what} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def create(self, failed: Iterable[str] = (), blind: Iterable[str] = ()) -> None:
        """Create (or re-create from scratch) the table with ``failed`` and ``blind`` silenced."""
        self._check(self._run(script=nft_ruleset(self.table, failed, blind)), f"create table inet {self.table}")

    def apply(self, failed: Iterable[str], blind: Iterable[str] = ()) -> None:
        """Silence exactly these from now on (atomically: one transaction); ``blind`` drops pings only."""
        script = nft_set_script(self.table, failed, blind)
        self._check(self._run(script=script), f"update table inet {self.table}")

    def exists(self) -> bool:
        return self._run("list", "table", "inet", self.table).returncode == 0

    def elements(self, kind: str = "failed") -> set[str]:
        """The addresses in sets ``kind`` and ``kind6`` (``failed`` or ``blind``), read back from the kernel."""
        out: set[str] = set()
        for name in (kind, f"{kind}6"):
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
