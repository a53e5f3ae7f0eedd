"""The Ansible filter file of the firewall: argument handling on top of sglfleet.security."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from sglfleet.host_plan import inventory_plans

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "examples" / "deepseek-r1-2x8-h100"


def load_filters() -> ModuleType:
    path = ROOT / "plugins" / "filter" / "sglfleet_firewall.py"
    spec = importlib.util.spec_from_file_location("sglfleet_firewall_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filter_reads_the_kernel_range_format_and_drops_empty_controller() -> None:
    filters = load_filters().FilterModule().filters()
    templates = inventory_plans(EXAMPLE).for_host("h100-b")["firewall"]
    rules = filters["sglfleet_firewall_finish"](
        templates,
        "h100-b",
        client_networks=[],
        monitoring_networks=["203.0.113.0/24"],
        controller_addresses=[""],
        node_metrics_ports=["9400"],
        ephemeral_range="40000\t50000",
    )
    by_name = {r["name"]: r for r in rules}
    assert by_name["r1-nccl-ephemeral"]["ports"] == ["40000-50000"]
    # No sglfleet_monitoring group: Prometheus runs on the first router host (h100-a).
    assert by_name["node-metrics"]["sources_ipv4"] == ["10.20.0.11", "192.0.2.11", "203.0.113.0/24"]
    assert "router" not in by_name


def test_merge_and_membership_filters() -> None:
    filters = load_filters().FilterModule().filters()
    assert filters["sglfleet_merge_ports"](["22", 23, "20-21"]) == ["20-23"]
    assert filters["sglfleet_merge_networks"](["10.0.0.1", "::1"]) == {
        "ipv4": ["10.0.0.1"],
        "ipv6": ["::1"],
    }
    assert filters["sglfleet_address_in_networks"]("10.0.0.1", ["10.0.0.0/8"])
    assert not filters["sglfleet_address_in_networks"]("10.0.0.1", ["192.168.0.0/16"])


def test_filter_refuses_a_bad_client_network_with_a_readable_error() -> None:
    import pytest
    from ansible.errors import AnsibleFilterError

    filters = load_filters().FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match="firewall_client_networks"):
        filters["sglfleet_firewall_finish"](
            inventory_plans(EXAMPLE).for_host("h100-a")["firewall"],
            "h100-a",
            client_networks=["clients"],
        )


def test_filter_refuses_planned_address_problems_naming_them() -> None:
    import pytest
    from ansible.errors import AnsibleFilterError

    filters = load_filters().FilterModule().filters()
    templates = {"problems": ["host n1: address `node1` is a name -- fix: use its IP"]}
    with pytest.raises(AnsibleFilterError, match="host n1: address `node1`"):
        filters["sglfleet_firewall_finish"](templates, "n1")
