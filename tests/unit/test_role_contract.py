"""The plan -> role contract: what the planner hands a role is what the role's spec declares.

`sglang_server_launch` is typed in roles/sglang_server/meta/argument_specs.yml option by option;
Ansible validates each converge's value against it. Here every example inventory's launch records
(sglfleet.launch, the same code the vars plugin runs) pass that validation, and the spec names
exactly the record's keys, so a field added on one side without the other fails here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from sglfleet.inventory import load_inventory
from sglfleet.launch import launch_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())


def _launch_spec() -> dict[str, Any]:
    specs = yaml.safe_load((ROOT / "roles/sglang_server/meta/argument_specs.yml").read_text())
    spec: dict[str, Any] = specs["argument_specs"]["main"]["options"]["sglang_server_launch"]
    return spec


def _validator() -> ArgumentSpecValidator:
    spec = _launch_spec()
    return ArgumentSpecValidator({"sglang_server_launch": spec})


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_launch_record_passes_the_roles_spec(example: Path) -> None:
    records = launch_table(load_inventory(example))
    assert records, example.name
    options = set(_launch_spec()["options"])
    for host, record in records.items():
        assert set(record) == options, host
        result = _validator().validate({"sglang_server_launch": record})
        assert result.error_messages == [], (host, result.error_messages)


def test_a_node_that_serves_nothing_passes_too() -> None:
    assert _validator().validate({"sglang_server_launch": None}).error_messages == []


def test_the_spec_refuses_a_record_it_does_not_know() -> None:
    record = next(iter(launch_table(load_inventory(EXAMPLES[0])).values()))
    wrong = {**record, "port": "not a port", "surprise": 1}
    errors = " ".join(_validator().validate({"sglang_server_launch": wrong}).error_messages)
    assert "surprise" in errors and "port" in errors
