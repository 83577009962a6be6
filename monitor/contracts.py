"""Contracts: which part of the network a customer assesses, under which policy.

A carrier runs many contracts on one network. A :class:`Contract` names its customer, its policy (time zone
and monthly base included) and the subtrees or circuits it covers (``scopes``; ``None`` is the whole
inventory). With no contract declared there is one, ``default``, covering everything under the default policy.
Contracts are declared in a YAML file (``contracts:`` list) or in the inventory's YAML/JSON document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ContractError, PolicyError
from monitor.inventory import Inventory, validate_node_id
from monitor.policy import DEFAULT_POLICY, Policy, load_policy, policy_from_mapping

DEFAULT_CONTRACT_ID = "default"


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    customer: str = ""
    name: str = ""
    policy: Policy = DEFAULT_POLICY
    scopes: tuple[str, ...] | None = None  # None: the whole inventory

    def __post_init__(self) -> None:
        try:
            validate_node_id(self.id, "contract id")
            for s in self.scopes or ():
                validate_node_id(s, "scope")
        except ValueError as exc:
            raise ContractError(str(exc)) from None
        if self.scopes is not None and not self.scopes:
            raise ContractError("a contract covers at least one scope", field="scopes")

    def channels(self, inventory: Inventory) -> frozenset[int] | None:
        """Channel positions covered (None: all)."""
        if self.scopes is None:
            return None
        return inventory.subset(self.scopes)

    def covers(self, inventory: Inventory, node_id: str) -> bool:
        return self.scopes is None or any(
            s in inventory and inventory.is_at_or_under(node_id, s) for s in self.scopes
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": self.customer,
            "name": self.name,
            "scopes": list(self.scopes) if self.scopes is not None else None,
            "policy": self.policy.to_json(),
        }


def default_contract(policy: Policy = DEFAULT_POLICY) -> Contract:
    return Contract(id=DEFAULT_CONTRACT_ID, customer="", name="Whole network", policy=policy)


def contract_from_mapping(data: object, where: str, base_dir: Path | None = None) -> Contract:
    """One contract declaration: ``{id, customer, name, scopes, policy: FILE | {settings}, timezone, base}``."""
    if not isinstance(data, dict):
        raise ContractError("a contract is a mapping", where=where)
    allowed = {"id", "customer", "name", "scopes", "policy", "timezone", "base", "__line__"}
    for key in data:
        if key not in allowed:
            raise ContractError("unknown key", where=where, field=str(key))
    if "id" not in data:
        raise ContractError("missing", where=where, field="id")
    policy = DEFAULT_POLICY
    raw_policy = data.get("policy")
    try:
        if isinstance(raw_policy, str):
            path = Path(raw_policy)
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                policy = load_policy(path)
            except PolicyError as exc:  # name both: the contract that refers to it, and the policy file
                raise ContractError(f"in policy file {exc}", where=where, field="policy") from None
        elif isinstance(raw_policy, dict):
            policy = policy_from_mapping(raw_policy, where=where)
        elif raw_policy is not None:
            raise ContractError("a policy file name or a mapping of settings", where=where, field="policy")
        overrides: dict[str, Any] = {}
        if data.get("timezone") is not None:
            overrides["timezone"] = data["timezone"]
        if data.get("base") is not None:
            overrides["base"] = policy_from_mapping({"base": data["base"]}).base
        if overrides:
            policy = replace(policy, **overrides)
    except PolicyError as exc:
        raise ContractError(exc.message, where=exc.where or where, field=exc.field) from None
    scopes = data.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
        raise ContractError("a list of node ids", where=where, field="scopes")
    try:
        return Contract(
            id=str(data["id"]),
            customer=str(data.get("customer", "")),
            name=str(data.get("name", "")),
            policy=policy,
            scopes=tuple(scopes) if scopes is not None else None,
        )
    except ContractError as exc:
        raise ContractError(exc.message, where=where, field=exc.field) from None


def load_contracts(path: Path) -> list[Contract]:
    """Read a YAML contracts file (``contracts:`` list); errors name file and line."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
    except OSError as exc:
        raise ContractError(f"cannot read ({exc.strerror})", where=str(path)) from None
    except yaml.YAMLError as exc:
        raise ContractError(f"not YAML ({exc})", where=str(path)) from None
    data = yaml.safe_load(text) or {}
    items = data.get("contracts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ContractError("expected a top-level 'contracts:' list", where=str(path))
    lines: list[int] = []
    if node is not None and isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "contracts" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    out = []
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else 0
        out.append(contract_from_mapping(item, f"{path}:{line}", path.parent))
    return out


def validate_contracts(contracts: Sequence[Contract], inventory: Inventory) -> None:
    """Ids unique, every scope a node of the inventory."""
    seen: set[str] = set()
    for c in contracts:
        if c.id in seen:
            raise ContractError(f"duplicate contract id {c.id!r}", field="id")
        seen.add(c.id)
        for s in c.scopes or ():
            if s not in inventory:
                raise ContractError(
                    f"contract {c.id!r}: scope {s!r} is not a node of the inventory", field="scopes"
                )


def select_contract(contracts: Sequence[Contract], contract_id: str | None) -> Contract:
    """The contract named, or the only one; several and none named is an error."""
    if not contracts:
        contracts = [default_contract()]
    if contract_id is None:
        if len(contracts) == 1:
            return contracts[0]
        raise ContractError(
            f"several contracts ({', '.join(c.id for c in contracts)}): name one with --contract",
            field="contract",
        )
    for c in contracts:
        if c.id == contract_id:
            return c
    raise ContractError(
        f"no contract {contract_id!r} (have {', '.join(c.id for c in contracts)})", field="contract"
    )
