"""Contracts: declarations from YAML, validation against the inventory, selection."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from monitor.contracts import default_contract, load_contracts, select_contract, validate_contracts
from monitor.errors import ContractError
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_the_shipped_example_declares_two_contracts_over_the_sample() -> None:
    contracts = load_contracts(DEPLOY / "contracts.example.yaml")
    inventory = sample_inventory()
    validate_contracts(contracts, inventory)
    county, thermal = contracts
    assert county.policy == DEFAULT_POLICY and county.scopes == tuple(f"T{i:02d}" for i in range(1, 9))
    assert thermal.policy.base == Decimal(26550)
    county_channels = county.channels(inventory)
    thermal_channels = thermal.channels(inventory)
    assert county_channels is not None and thermal_channels is not None
    assert not county_channels & thermal_channels
    assert len(county_channels) + len(thermal_channels) == len(inventory.channels)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contracts: 3\n", "expected a top-level 'contracts:' list"),
        ("contracts:\n  - customer: x\n", ":2: field 'id': missing"),
        ("contracts:\n  - id: a\n    colour: red\n", ":2: field 'colour': unknown key"),
        ("contracts:\n  - id: a b\n", "contract id 'a b' is not a node id"),
        ("contracts:\n  - id: a\n    scopes: T01\n", ":2: field 'scopes': a list of node ids"),
        (
            "contracts:\n  - id: a\n    timezone: Mars/Olympus\n",
            "field 'timezone': 'Mars/Olympus' is not an IANA time zone",
        ),
        ("contracts:\n  - id: a\n    policy: {window_s: -1}\n", "field 'window_s': must not be negative"),
        ("contracts:\n  - id: a\n    policy: nowhere.yaml\n", "nowhere.yaml: cannot read (No such file or directory)"),
    ],
)
def test_bad_contract_files_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text(text)
    with pytest.raises(ContractError) as info:
        load_contracts(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_validation_and_selection() -> None:
    inventory = sample_inventory()
    path_contracts = load_contracts(DEPLOY / "contracts.example.yaml")
    with pytest.raises(ContractError, match="duplicate contract id 'county-video'"):
        validate_contracts([path_contracts[0], path_contracts[0]], inventory)
    unknown = type(path_contracts[0])(id="x", scopes=("T99",))
    with pytest.raises(ContractError, match="scope 'T99' is not a node of the inventory"):
        validate_contracts([unknown], inventory)
    assert select_contract([], None).id == "default"
    assert select_contract(path_contracts, "thermal-line").id == "thermal-line"
    with pytest.raises(ContractError, match="name one with --contract"):
        select_contract(path_contracts, None)
    with pytest.raises(ContractError, match="no contract 'nope'"):
        select_contract(path_contracts, "nope")
    assert default_contract().scopes is None
