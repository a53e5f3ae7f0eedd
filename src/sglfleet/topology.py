"""Pure planning: inventory -> serving groups, ranks, ports, launch argv and env. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sglfleet.checks import require_valid
from sglfleet.cluster import (
    Replica,
    group_tp,
    memory_fit,
    option_tokens,
    replicas,
    service_address,
)
from sglfleet.contract import PrefillWorker, RouterWorkers
from sglfleet.model_arch import architecture
from sglfleet.models import (
    REDACTED,
    ClusterPlan,
    GroupPlan,
    Inventory,
    NodePlan,
)
from sglfleet.nccl import node_nccl_env
from sglfleet.security import pinned_ports

SERVER_UNIT = "sglang-server@{group}.service"


def server_args(inv: Inventory, replica: Replica, rank: int) -> list[str]:
    """Every SGLang server flag of one node, as command-line tokens."""
    spec = replica.spec
    model = inv.models[spec.model]
    host = inv.hosts[replica.hosts[rank]]
    nnodes = len(replica.hosts)
    args = [
        "--model-path",
        f"{inv.models_dir}/{model.name}",
        "--served-model-name",
        model.served_name or model.name,
        "--tp-size",
        str(group_tp(inv, replica)),
    ]
    if spec.dp > 1:
        args += ["--dp-size", str(spec.dp)]
    if spec.attn_dp:
        args += ["--attn-dp-size", str(spec.attn_dp)]
    if spec.ep:
        args += ["--ep-size", str(spec.ep)]
    args += ["--host", service_address(host), "--port", str(spec.port)]
    if nnodes > 1:
        rank0 = inv.hosts[replica.hosts[0]]
        args += [
            "--nnodes",
            str(nnodes),
            "--node-rank",
            str(rank),
            "--dist-init-addr",
            f"{rank0.fabric_address}:{spec.dist_init_port}",
        ]
    # Pinned internal ports, so that the firewall can fence them (sglfleet.security).
    args += pinned_ports(spec.dist_init_port, spec.nccl_port).flags()
    if spec.mem_fraction_static:
        args += ["--mem-fraction-static", str(spec.mem_fraction_static)]
    if model.trust_remote_code:
        args.append("--trust-remote-code")
    args.append("--enable-metrics")
    if spec.mode != "regular":
        dis = spec.disaggregation
        args += ["--disaggregation-mode", spec.mode]
        if dis:
            args += ["--disaggregation-transfer-backend", dis.transfer_backend]
            args += ["--disaggregation-bootstrap-port", str(dis.bootstrap_port)]
            if dis.ib_device:
                args += ["--disaggregation-ib-device", dis.ib_device]
    args += option_tokens(spec.server_args)
    args += list(spec.extra_args)
    if inv.api_key is not None:
        args += ["--api-key", REDACTED]
    return args


def launch_argv(inv: Inventory, group: str) -> list[str]:
    """The command the node's unit runs; every flag comes from the group's config file."""
    python = f"{inv.install_dir}/venv/bin/python"
    config = f"{inv.config_dir}/{group}/server-args.yaml"
    if inv.engine == "rehearsal":
        return [python, "-m", "sglfleet_rehearsal", "--config", config]
    return [python, "-m", "sglang.launch_server", "--config", config]


def node_env(inv: Inventory, replica: Replica, rank: int) -> dict[str, str]:
    # NCCL_*/GLOO_* have one owner: nccl_tuning's /etc/sglfleet/nccl.env (see node_nccl_plan).
    env: dict[str, str] = {}
    env["SGLANG_WARMUP_TIMEOUT"] = str(inv.global_vars.get("sglang_server_warmup_timeout", 1800))
    env["SGL_DG_CACHE_DIR"] = str(
        inv.global_vars.get("sglang_server_deepgemm_cache_dir", "/var/cache/sglfleet/deep_gemm")
    )
    env.update(pinned_ports(replica.spec.dist_init_port, replica.spec.nccl_port).env())
    env.update({k: str(v) for k, v in replica.spec.env.items()})
    return env


def node_nccl_plan(inv: Inventory, replica: Replica, rank: int) -> dict[str, str]:
    """The node's NCCL/Gloo variables the inventory determines; nccl_tuning writes them as given."""
    # Every node, single-node groups too: the plan is the one owner of inventory-derived values.
    host = inv.hosts[replica.hosts[rank]]
    return node_nccl_env(host, inv.hosts[replica.hosts[0]], inv.global_vars)


def plan(inv: Inventory, *, checked: bool = False) -> ClusterPlan:
    """The whole cluster's plan. Raises InventoryError when cross-checks fail.

    `checked`: the caller already ran `checks.problems(inv)` and found nothing (no second pass).
    """
    if not checked:
        require_valid(inv, include_memory=False)
    groups: list[GroupPlan] = []
    for replica in replicas(inv):
        model = inv.models[replica.spec.model]
        rank0 = inv.hosts[replica.hosts[0]]
        nodes = tuple(
            NodePlan(
                host=host,
                node_rank=rank,
                argv=tuple(launch_argv(inv, replica.name)),
                server_args=tuple(server_args(inv, replica, rank)),
                env=node_env(inv, replica, rank),
                nccl_env=node_nccl_plan(inv, replica, rank),
                unit=SERVER_UNIT.format(group=replica.name),
                service_address=service_address(inv.hosts[host]),
                port=replica.spec.port,
            )
            for rank, host in enumerate(replica.hosts)
        )
        multi = len(replica.hosts) > 1
        groups.append(
            GroupPlan(
                name=replica.name,
                model=model.name,
                spec_name=replica.spec.name,
                mode=replica.spec.mode,
                nnodes=len(replica.hosts),
                tp=group_tp(inv, replica),
                dist_init_addr=(
                    f"{rank0.fabric_address}:{replica.spec.dist_init_port}" if multi else None
                ),
                api_url=f"http://{service_address(rank0)}:{replica.spec.port}",
                memory=memory_fit(inv, replica, model),
                nodes=nodes,
                architecture_source=arch.source if (arch := architecture(model)) else None,
            )
        )
    router_url = None
    if inv.router is not None:
        router_url = f"http://{service_address(inv.hosts[inv.router.host])}:{inv.router.port}"
    endpoint = f"{router_url}/v1" if router_url else (f"{groups[0].api_url}/v1" if groups else None)
    return ClusterPlan(
        cluster_name=inv.cluster_name,
        serving_groups=tuple(groups),
        router_url=router_url,
        endpoint=endpoint,
    )


def plan_json(cluster: ClusterPlan) -> dict[str, Any]:
    """The `plan --json` document, exactly the documented shape."""
    return {
        "serving_groups": [
            {
                "name": g.name,
                "model": g.model,
                "nodes": [
                    {
                        "host": n.host,
                        "node_rank": n.node_rank,
                        "argv": list(n.argv),
                        "server_args": list(n.server_args),
                        "env": dict(n.env),
                        "nccl_env": dict(n.nccl_env),
                    }
                    for n in g.nodes
                ],
            }
            for g in cluster.serving_groups
        ]
    }


def unfit_groups(cluster: ClusterPlan) -> Iterable[GroupPlan]:
    return (g for g in cluster.serving_groups if not g.memory.fits)


def router_workers(inv: Inventory, cluster: ClusterPlan | None = None) -> RouterWorkers:
    """What the router fronts: rank-0 URLs of regular groups, or prefill/decode pairs."""
    cluster = plan(inv) if cluster is None else cluster
    regular: list[str] = []
    prefill: list[PrefillWorker] = []
    decode: list[str] = []
    specs = {s.name: s for s in inv.serving_groups}
    for group in cluster.serving_groups:
        spec = specs[group.spec_name]
        if not spec.router:
            continue
        if group.mode == "prefill":
            bootstrap = spec.disaggregation.bootstrap_port if spec.disaggregation else None
            prefill.append({"url": group.api_url, "bootstrap_port": bootstrap})
        elif group.mode == "decode":
            decode.append(group.api_url)
        else:
            regular.append(group.api_url)
    return {
        "pd": bool(prefill or decode),
        "worker_urls": regular,
        "prefill": prefill,
        "decode": decode,
        "groups": [
            {"name": g.name, "url": g.api_url, "mode": g.mode} for g in cluster.serving_groups
        ],
    }
