"""Per-host launch records for the Ansible filters, computed once per inventory (O(nodes))."""

from __future__ import annotations

from sglfleet.contract import LaunchRecord
from sglfleet.models import ClusterPlan, GroupPlan, Inventory, NodePlan
from sglfleet.server_config import tokens_to_config
from sglfleet.topology import plan


def _record(inv: Inventory, group: GroupPlan, node: NodePlan) -> LaunchRecord:
    args = list(node.server_args)
    if "--api-key" in args:
        # The API key reaches the node through Ansible's own (vault-decrypted) variables.
        index = args.index("--api-key")
        del args[index : index + 2]
    return {
        "group": group.name,
        "model": group.model,
        "mode": group.mode,
        "nnodes": group.nnodes,
        "node_rank": node.node_rank,
        "argv": list(node.argv),
        "server_args": args,
        "config": tokens_to_config(args),
        "env": dict(node.env),
        # What nccl_tuning writes as given (nccl_tuning_planned_env): the one owner of these values.
        "nccl_env": dict(node.nccl_env),
        "unit": node.unit,
        "port": node.port,
        "service_address": node.service_address,
        "rank0_url": group.api_url,
        "dist_init_addr": group.dist_init_addr,
        "members": [n.host for n in group.nodes],
        "member_urls": [f"http://{n.service_address}:{n.port}" for n in group.nodes],
        "model_dir": f"{inv.models_dir}/{group.model}",
    }


def launch_table(inv: Inventory, cluster: ClusterPlan | None = None) -> dict[str, LaunchRecord]:
    """Every serving host's launch record, keyed by host name."""
    cluster = cluster or plan(inv)
    return {
        node.host: _record(inv, group, node)
        for group in cluster.serving_groups
        for node in group.nodes
    }
