"""Each host's part of the cluster plan, as plain data, computed once per run.

The vars plugin `plugins/vars/sglfleet_plan.py` calls `inventory_plans` in Ansible's main process
and hands every host the variable `sglfleet_plan`; playbooks read it instead of planning per host.
The plan holds no secret (the API key reaches hosts through Ansible's own, vault-decrypted vars).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sglfleet.checks import problems as inventory_problems
from sglfleet.cluster import replicas
from sglfleet.contract import FirewallPlan, MonitoringTargets, RouterWorkers
from sglfleet.errors import InventoryError, Problem
from sglfleet.inventory import load_inventory
from sglfleet.launch import launch_table
from sglfleet.models import Inventory
from sglfleet.monitoring import monitoring_targets
from sglfleet.nccl import node_nccl_env
from sglfleet.security import (
    MONITORING_GROUP,
    ROUTER_GROUP,
    address_problems,
    rule_templates,
)
from sglfleet.topology import plan, router_workers

GPU_GROUP = "sglfleet_gpu_nodes"


def problem_lines(problems: list[Problem]) -> list[str]:
    """One line per problem with its fix, as the preflight play prints them."""
    return [f"{p.render()} -- fix: {p.hint}" for p in problems]


@dataclass(frozen=True)
class InventoryPlans:
    """Every host's `sglfleet_plan`; `empty()` is what other hosts (or all, on problems) get."""

    inventory_dir: str
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def for_host(self, name: str) -> dict[str, Any]:
        return self.hosts.get(name) or self.empty()

    def empty(self) -> dict[str, Any]:
        return {
            "inventory_dir": self.inventory_dir,
            "problems": list(self.problems),
            "launch": None,
        }


def host_plans(inv: Inventory) -> dict[str, dict[str, Any]]:
    """`sglfleet_plan` of every host of a valid inventory (`checks.problems(inv)` found nothing)."""
    cluster = plan(inv, checked=True)
    launches = launch_table(inv, cluster)
    workers: RouterWorkers | None = None
    targets: MonitoringTargets | None = None
    all_replicas = replicas(inv)
    routers = [n for n, h in inv.hosts.items() if ROUTER_GROUP in h.groups]
    # Prometheus runs on the sglfleet_monitoring hosts, else the first router host.
    prometheus = [n for n, h in inv.hosts.items() if MONITORING_GROUP in h.groups] or routers[:1]
    address_lines = problem_lines(address_problems(inv, inv.hosts))
    out: dict[str, dict[str, Any]] = {}
    for name, host in inv.hosts.items():
        entry: dict[str, Any] = {
            "inventory_dir": inv.path,
            "problems": [],
            "launch": launches.get(name),
        }
        if ROUTER_GROUP in host.groups:
            workers = router_workers(inv, cluster) if workers is None else workers
            entry["router_workers"] = workers
        if name in prometheus:
            targets = monitoring_targets(inv, cluster) if targets is None else targets
            entry["monitoring_targets"] = targets
            entry["monitoring_router_endpoint"] = cluster.endpoint
        if GPU_GROUP in host.groups:
            # One owner of NCCL values: a GPU node outside every group still gets the tuning.
            launch = entry["launch"]
            entry["nccl_env"] = (
                launch["nccl_env"] if launch else node_nccl_env(host, host, inv.global_vars)
            )
        if GPU_GROUP in host.groups or ROUTER_GROUP in host.groups:
            firewall: FirewallPlan = (
                {"problems": address_lines, "rules": [], "monitoring": []}
                if address_lines
                else rule_templates(inv, name, all_replicas)
            )
            entry["firewall"] = firewall
        out[name] = entry
    return out


def inventory_plans(
    inventory_dir: str | Path, extra_vars: Mapping[str, Any] | None = None
) -> InventoryPlans:
    """Load the inventory once, check it, and plan every host; problems instead of raising."""
    path = str(Path(inventory_dir).expanduser().resolve())
    try:
        # Extra vars (`-e`) sit on top of every inventory layer, as in Ansible.
        inv = load_inventory(path, extra_vars=extra_vars)
    except InventoryError as exc:
        return InventoryPlans(path, problems=tuple(problem_lines(exc.problems)))
    problems = inventory_problems(inv)
    if problems:
        return InventoryPlans(path, problems=tuple(problem_lines(problems)))
    return InventoryPlans(path, hosts=host_plans(inv))
