"""The plan -> role contract: what the planner hands a role is what the role's spec declares.

The planner-fed role inputs (`sglang_server_launch`, `sglang_router_workers`,
`monitoring_prometheus_targets`) are typed in their roles' meta/argument_specs.yml option by option;
Ansible validates each converge's value against them. Here every example inventory's plan
(sglfleet.host_plan, the same code the vars plugin runs) passes that validation, and each spec
names exactly the value's keys, so a field added on one side without the other fails here first.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from sglfleet.contract import FILTER_FED, PLANNER_FED, FirewallPlan
from sglfleet.docgen import role_option
from sglfleet.host_plan import host_plans
from sglfleet.inventory import load_inventory
from sglfleet.launch import launch_table
from sglfleet.security import finish_rules

ROOT = Path(__file__).resolve().parents[3]
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


def _role_option(role: str, name: str) -> dict[str, Any]:
    return role_option(ROOT, role, name)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_planner_fed_input_passes_its_roles_spec(example: Path) -> None:
    plans = host_plans(load_inventory(example))
    seen = set()
    for (role, name), (key, _record) in PLANNER_FED.items():
        option = _role_option(role, name)
        validator = ArgumentSpecValidator({name: option})
        for host, entry in plans.items():
            if entry.get(key) is None:
                continue
            seen.add(key)
            assert set(entry[key]) == set(option["options"]), (role, host)
            errors = validator.validate({name: entry[key]}).error_messages
            assert errors == [], (role, host, errors)
        assert validator.validate({}).error_messages == [], f"{role}: its default passes"
    assert "launch" in seen


def test_the_examples_exercise_every_planner_fed_input() -> None:
    keys = {k for e in EXAMPLES for p in host_plans(load_inventory(e)).values() for k in p}
    assert {key for key, _record in PLANNER_FED.values()} <= keys


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_filter_fed_input_passes_its_roles_spec(example: Path) -> None:
    """The firewall's rules: the plan's templates finished as the filter does, then validated."""
    plans = host_plans(load_inventory(example))
    for (role, name), (key, _via, record) in FILTER_FED.items():
        option = _role_option(role, name)
        validator = ArgumentSpecValidator({name: option})
        checked = 0
        for host, entry in plans.items():
            planned = entry.get(key)
            if planned is None:
                continue
            assert set(planned) == set(typing.get_type_hints(FirewallPlan)), host
            rules = finish_rules(
                planned,
                client_networks=["192.0.2.0/24"],
                controller_addresses=["198.51.100.7"],
                node_metrics_ports=[9100],
                web_ports=[9090],
            )
            assert rules and all(set(r) == set(typing.get_type_hints(record)) for r in rules)
            errors = validator.validate({name: rules}).error_messages
            assert errors == [], (role, host, errors)
            checked += 1
        assert checked, f"{example.name}: no host has {key}"
