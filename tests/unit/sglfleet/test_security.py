"""sglfleet.security: the pinned port block and each host's firewall allow-list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.inventory import load_inventory
from sglfleet.models import Inventory
from sglfleet.security import (
    address_in_networks,
    address_problems,
    firewall_rules,
    merge_networks,
    merge_ports,
    pinned_ports,
    port_problems,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "inventories" / "examples"


def write_inventory(tmp_path: Path, groups: list[dict[str, Any]], **extra: Any) -> Inventory:
    hosts = {
        f"n{i}": {
            "ansible_host": f"192.0.2.{10 + i}",
            "sglfleet_fabric_address": f"10.20.0.{10 + i}",
            "sglfleet_gpu_count": 8,
            "sglfleet_gpu_model": "H100-SXM5-80GB",
        }
        for i in range(1, 7)
    }
    doc = {
        "all": {
            "children": {
                "sglfleet_gpu_nodes": {"hosts": hosts},
                "sglfleet_routers": {"hosts": {"n6": None}},
                "sglfleet_monitoring": {"hosts": {"prom": {"ansible_host": "192.0.2.99"}}},
            }
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(doc))
    gv = tmp_path / "group_vars" / "all"
    gv.mkdir(parents=True)
    cluster = {
        "sglfleet_models": {"m": {"hub": "local", "weights_gb": 10}},
        "sglfleet_serving_groups": groups,
        "sglfleet_router": {"host": "n6", "port": 8000, "metrics_port": 29000},
        **extra,
    }
    (gv / "serving.yml").write_text(yaml.safe_dump(cluster))
    return load_inventory(tmp_path)


def by_name(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rules}


def test_pinned_ports_block_and_env() -> None:
    ports = pinned_ports(20000)
    assert ports.env() == {"SGLANG_PORT": "20032", "SGLANG_TCP_STORE_PORT": "20064"}
    assert ports.flags() == ["--nccl-port", "20014"]
    assert ports.block == (20000, 20064)
    assert ports.sglang_port_range == (20032, 20063)
    assert merge_ports(ports.member_ports()) == ["20000-20006", "20013-20014", "20032-20064"]
    assert pinned_ports(21000, nccl_port=21500).nccl == 21500


def test_multi_node_internal_ports_only_from_members(tmp_path: Path) -> None:
    inv = write_inventory(
        tmp_path,
        [
            {"name": "tp", "model": "m", "hosts": ["n1", "n2"], "tp": 16},
            {"name": "solo", "model": "m", "hosts": ["n3"], "tp": 8, "dist_init_port": 21000},
        ],
    )
    n1 = by_name(firewall_rules(inv, "n1"))
    internal = n1["tp-internal"]
    assert internal["sources_ipv4"] == ["10.20.0.12", "192.0.2.12"]
    assert internal["ports"] == ["20000-20006", "20013-20014", "20032-20064"]
    assert n1["tp-nccl-ephemeral"]["ports"] == ["32768-60999"]
    assert n1["tp-nccl-ephemeral"]["sources_ipv4"] == ["10.20.0.12", "192.0.2.12"]
    # A non-member (n3) and the router (n6) are not among the internal sources.
    for address in ("192.0.2.13", "10.20.0.13", "192.0.2.16", "10.20.0.16"):
        assert address not in internal["sources_ipv4"]
    # A single-node group opens no internal ports at all.
    assert set(by_name(firewall_rules(inv, "n3"))) == {"solo-api"}


def test_api_port_router_clients_monitoring_controller(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    rules = by_name(
        firewall_rules(
            inv,
            "n1",
            client_networks=["10.1.0.0/16", "10.1.2.3", "2001:db8::/48"],
            controller_addresses=["198.51.100.7"],
            node_metrics_ports=[9400],
        )
    )
    api = rules["g-api"]
    assert api["ports"] == ["30000"]
    # Router n6 (both addresses), clients (merged), monitoring host, controller.
    assert api["sources_ipv4"] == [
        "10.1.0.0/16",
        "10.20.0.16",
        "192.0.2.16",
        "192.0.2.99",
        "198.51.100.7",
    ]
    assert api["sources_ipv6"] == ["2001:db8::/48"]
    assert rules["node-metrics"]["sources_ipv4"] == ["192.0.2.99", "198.51.100.7"]
    assert "router" not in rules


def test_router_host_rules(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    rules = by_name(firewall_rules(inv, "n6", client_networks=["10.1.0.0/16"]))
    assert rules["router"]["ports"] == ["8000"]
    assert rules["router"]["sources_ipv4"] == ["10.1.0.0/16"]
    assert rules["router-metrics"]["ports"] == ["29000"]
    assert rules["router-metrics"]["sources_ipv4"] == ["192.0.2.99"]
    # No clients, no controller: the router rule has no sources and is left out, not opened.
    bare = by_name(firewall_rules(inv, "n6"))
    assert "router" not in bare


def test_web_ui_ports_open_to_clients_and_controller_only(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    rules = by_name(
        firewall_rules(
            inv,
            "n6",
            client_networks=["10.1.0.0/16"],
            controller_addresses=["198.51.100.7"],
            web_ports=[9090, 3000, 8080],
        )
    )
    assert rules["web-ui"]["ports"] == ["3000", "8080", "9090"]
    # Monitoring (192.0.2.99) scrapes exporters; it is not a client of the web UIs.
    assert rules["web-ui"]["sources_ipv4"] == ["10.1.0.0/16", "198.51.100.7"]
    assert "web-ui" not in by_name(firewall_rules(inv, "n6", client_networks=["10.1.0.0/16"]))
    # No clients, no controller: left out, not opened to everyone.
    assert "web-ui" not in by_name(firewall_rules(inv, "n6", web_ports=[9090]))


def test_pd_bootstrap_from_decode_and_router(tmp_path: Path) -> None:
    dis = {"transfer_backend": "mooncake", "bootstrap_port": 8998}
    inv = write_inventory(
        tmp_path,
        [
            {
                "name": "p",
                "model": "m",
                "hosts": ["n1"],
                "tp": 8,
                "mode": "prefill",
                "disaggregation": dis,
            },
            {
                "name": "d",
                "model": "m",
                "hosts": ["n2"],
                "tp": 8,
                "mode": "decode",
                "disaggregation": dis,
            },
        ],
    )
    prefill = by_name(firewall_rules(inv, "n1"))
    assert prefill["p-bootstrap"]["ports"] == ["8998"]
    assert prefill["p-bootstrap"]["sources_ipv4"] == [
        "10.20.0.12",
        "10.20.0.16",
        "192.0.2.12",
        "192.0.2.16",
    ]
    decode = by_name(firewall_rules(inv, "n2"))
    assert "d-bootstrap" not in decode
    assert decode["d-kv-transfer"]["sources_ipv4"] == ["10.20.0.11", "192.0.2.11"]


def test_bad_client_network_is_refused(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    with pytest.raises(ValueError, match="firewall_client_networks"):
        firewall_rules(inv, "n1", client_networks=["clients.example"])


def test_port_problems(tmp_path: Path) -> None:
    groups = [
        {"name": "hi", "model": "m", "hosts": ["n1", "n2"], "tp": 16, "dist_init_port": 40000},
        {
            "name": "clash",
            "model": "m",
            "hosts": ["n3", "n4"],
            "tp": 16,
            "dist_init_port": 29990,
            "port": 30000,
        },
        {"name": "ok", "model": "m", "hosts": ["n5", "n6"], "tp": 16},
    ]
    messages = [p.message for p in port_problems(write_inventory(tmp_path, groups))]
    assert any("hi" in m and "ephemeral" in m for m in messages)
    assert any("port 30000 lies inside group clash" in m for m in messages)
    assert not any("group ok" in m for m in messages)


def test_address_problems_name_not_ip(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    assert address_problems(inv, inv.hosts) == []
    named = inv.model_copy(
        update={
            "hosts": {
                **inv.hosts,
                "n1": inv.hosts["n1"].model_copy(update={"ansible_host": "gpu-01.example"}),
            }
        }
    )
    problems = address_problems(named, ["n1"])
    assert len(problems) == 1 and problems[0].host == "n1"


def test_merge_helpers() -> None:
    assert merge_ports([80, "79", "81-90", "85", "100"]) == ["79-90", "100"]
    with pytest.raises(ValueError):
        merge_ports(["70000"])
    assert merge_networks(["10.0.0.1", "10.0.0.0/24", "::1", "2001:db8::/32"]) == (
        ["10.0.0.0/24"],
        ["::1", "2001:db8::/32"],
    )
    assert address_in_networks("10.0.0.5", ["10.0.0.0/24"])
    assert not address_in_networks("10.0.1.5", ["10.0.0.0/24", "junk"])
    assert not address_in_networks("not-an-ip", ["0.0.0.0/0"])


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir()))
def test_example_inventories_have_no_port_or_address_problems(example: str) -> None:
    inv = load_inventory(EXAMPLES / example)
    assert port_problems(inv) == []
    assert address_problems(inv, inv.hosts) == []
    for host in inv.hosts:
        for rule in firewall_rules(inv, host):
            assert rule["sources_ipv4"] or rule["sources_ipv6"]


def test_monitoring_falls_back_to_the_first_router_host(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, [{"name": "g", "model": "m", "hosts": ["n1"], "tp": 8}])
    without = inv.model_copy(
        update={
            "hosts": {
                name: host.model_copy(
                    update={"groups": tuple(g for g in host.groups if g != "sglfleet_monitoring")}
                )
                for name, host in inv.hosts.items()
                if name != "prom"
            }
        }
    )
    rules = by_name(firewall_rules(without, "n1", node_metrics_ports=[9100]))
    assert rules["node-metrics"]["sources_ipv4"] == ["10.20.0.16", "192.0.2.16"]
    # The router host itself runs a node exporter too.
    assert by_name(firewall_rules(without, "n6", node_metrics_ports=[9100]))["node-metrics"]
