"""Prometheus scrape targets of a cluster, from its plan (pure; the controller computes it once)."""

from __future__ import annotations

from sglfleet.cluster import service_address
from sglfleet.contract import MonitoringTargets, StaticConfig
from sglfleet.models import ClusterPlan, Inventory
from sglfleet.topology import plan

DEFAULT_NODE_EXPORTER_PORT = 9100
DEFAULT_DCGM_EXPORTER_PORT = 9400


def monitoring_targets(
    inventory: Inventory, cluster: ClusterPlan | None = None
) -> MonitoringTargets:
    """Prometheus static_configs per job: SGLang servers, routers, node and DCGM exporters.

    Every member of every serving group is scraped (ranks >= 1 export their scheduler's gauges
    too). Node exporter is scraped on every host at its `monitoring_node_exporter_port`; DCGM only
    on hosts with GPUs that are not simulated and whose exporter is enabled, at its
    `dcgm_exporter_port` (the roles' defaults, 9100 and 9400, unless the inventory sets them).
    """
    cluster = plan(inventory) if cluster is None else cluster
    sglang: list[StaticConfig] = []
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
    router: list[StaticConfig] = []
    if inventory.router is not None:
        router_host = inventory.hosts[inventory.router.host]
        router.append(
            {
                "targets": [f"{service_address(router_host)}:{inventory.router.metrics_port}"],
                "labels": {"host": router_host.name},
            }
        )
    node: list[StaticConfig] = []
    dcgm: list[StaticConfig] = []
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
