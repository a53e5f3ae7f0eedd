"""Ansible filters: the inventory's Prometheus scrape targets, from sglfleet's planner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.inventory import load_inventory  # noqa: E402
from sglfleet.models import Inventory  # noqa: E402
from sglfleet.topology import plan, service_address  # noqa: E402

DEFAULT_NODE_EXPORTER_PORT = 9100
DEFAULT_DCGM_EXPORTER_PORT = 9400
_CACHE: dict[str, Inventory] = {}


def _inventory(inventory_dir: str) -> Inventory:
    if inventory_dir not in _CACHE:
        _CACHE[inventory_dir] = load_inventory(inventory_dir)
    return _CACHE[inventory_dir]


def monitoring_targets(inventory: Inventory) -> dict[str, list[dict[str, Any]]]:
    """Prometheus static_configs per job: SGLang servers, routers, node and DCGM exporters.

    Every member of every serving group is scraped (ranks >= 1 export their scheduler's gauges
    too). Node exporter is scraped on every host at its `monitoring_node_exporter_port`; DCGM only
    on hosts with GPUs that are not simulated and whose exporter is enabled, at its
    `dcgm_exporter_port` (the roles' defaults, 9100 and 9400, unless the inventory sets them).
    """
    cluster = plan(inventory)
    sglang: list[dict[str, Any]] = []
    for group in cluster.serving_groups:
        for member in group.nodes:
            sglang.append(
                {
                    "targets": [f"{member.service_address}:{member.port}"],
                    "labels": {
                        "host": member.host,
                        "group": group.name,
                        "node_rank": str(member.node_rank),
                        "model": group.model,
                        "mode": group.mode,
                        "unit": member.unit,
                    },
                }
            )
    router: list[dict[str, Any]] = []
    if inventory.router is not None:
        router_host = inventory.hosts[inventory.router.host]
        router.append(
            {
                "targets": [f"{service_address(router_host)}:{inventory.router.metrics_port}"],
                "labels": {"host": router_host.name},
            }
        )
    node: list[dict[str, Any]] = []
    dcgm: list[dict[str, Any]] = []
    for name in sorted(inventory.hosts):
        host = inventory.hosts[name]
        address = service_address(host)
        node_port = int(host.vars.get("monitoring_node_exporter_port", DEFAULT_NODE_EXPORTER_PORT))
        node.append({"targets": [f"{address}:{node_port}"], "labels": {"host": name}})
        exporter_enabled = bool(host.vars.get("dcgm_exporter_enabled", True))
        if host.gpu_count > 0 and not host.simulated_gpus and exporter_enabled:
            port = int(host.vars.get("dcgm_exporter_port", DEFAULT_DCGM_EXPORTER_PORT))
            dcgm.append({"targets": [f"{address}:{port}"], "labels": {"host": name}})
    return {"sglang": sglang, "router": router, "node": node, "dcgm": dcgm}


def sglfleet_monitoring_targets(inventory_dir: str) -> dict[str, list[dict[str, Any]]]:
    """The scrape targets of the inventory at `inventory_dir` (see `monitoring_targets`)."""
    return monitoring_targets(_inventory(inventory_dir))


def sglfleet_monitoring_router_endpoint(inventory_dir: str) -> str | None:
    """The cluster's OpenAI-compatible base URL, `.../v1` (the router, else group 1's rank 0)."""
    return plan(_inventory(inventory_dir)).endpoint


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_monitoring_targets": sglfleet_monitoring_targets,
            "sglfleet_monitoring_router_endpoint": sglfleet_monitoring_router_endpoint,
        }
