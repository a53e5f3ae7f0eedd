"""Pure planning: inventory -> serving groups, ranks, ports, launch argv and env. No I/O here."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sglfleet.errors import InventoryError, Problem
from sglfleet.models import (
    REDACTED,
    ClusterPlan,
    GroupPlan,
    Host,
    Inventory,
    MemoryFit,
    ModelSpec,
    NodePlan,
    ServingGroupSpec,
)
from sglfleet.nccl import node_nccl_env
from sglfleet.security import pinned_ports, port_problems

# GPU memory by model name fragment, in GB as vendors quote it (decimal).
GPU_MEMORY_GB: dict[str, float] = {
    "B200": 180.0,
    "H200": 141.0,
    "H100-NVL": 94.0,
    "H100": 80.0,
    "H800": 80.0,
    "H20": 96.0,
    "A100-40": 40.0,
    "A100": 80.0,
    "L40S": 48.0,
    "L4": 24.0,
    "SIMULATED": 80.0,
}

DEFAULT_MEM_FRACTION_STATIC = 0.88
# SGLang 0.5.23 PortArgs: with DP attention, ZMQ ports at dist_init_port+1 .. +6.
ATTN_DP_DERIVED_PORTS = 6
DEFAULT_KV_RESERVE_FRACTION = 0.10
SERVER_UNIT = "sglang-server@{group}.service"


def gpu_memory_gb(host: Host) -> float | None:
    """The host's per-GPU memory: declared, else looked up from its GPU model name."""
    if host.gpu_memory_gb:
        return float(host.gpu_memory_gb)
    if not host.gpu_model:
        return None
    model = host.gpu_model.upper()
    for fragment, size in GPU_MEMORY_GB.items():
        if fragment in model:
            return size
    return None


@dataclass(frozen=True)
class Replica:
    """One SGLang engine instance: a serving-group spec applied to one set of hosts."""

    name: str
    spec: ServingGroupSpec
    hosts: tuple[str, ...]


def expand_replicas(spec: ServingGroupSpec) -> list[Replica]:
    """Split a spec's hosts into engine instances of `nodes_per_replica` hosts each."""
    per = spec.nodes_per_replica or len(spec.hosts) or 1
    chunks = [spec.hosts[i : i + per] for i in range(0, len(spec.hosts), per)]
    if len(chunks) <= 1:
        return [Replica(spec.name, spec, spec.hosts)]
    return [Replica(f"{spec.name}-{i}", spec, chunk) for i, chunk in enumerate(chunks)]


def service_address(host: Host) -> str:
    """The address SGLang binds and the router dials: declared, else ansible_host, else name."""
    declared = host.vars.get("sglfleet_service_address")
    return str(declared or host.ansible_host or host.name)


def memory_fit(inv: Inventory, replica: Replica, model: ModelSpec) -> MemoryFit:
    hosts = [inv.hosts[h] for h in replica.hosts if h in inv.hosts]
    gpu_count = sum(h.gpu_count for h in hosts)
    sizes = {gpu_memory_gb(h) for h in hosts}
    per_gpu = min((s for s in sizes if s), default=0.0)
    fraction = replica.spec.mem_fraction_static or DEFAULT_MEM_FRACTION_STATIC
    usable = gpu_count * per_gpu * fraction
    reserve = (
        model.kv_cache_reserve_gb
        if model.kv_cache_reserve_gb is not None
        else model.weights_gb * DEFAULT_KV_RESERVE_FRACTION
    )
    need = model.weights_gb + reserve
    fits = gpu_count > 0 and per_gpu > 0 and need <= usable
    message = (
        f"{model.name}: {model.weights_gb:.0f} GB weights + {reserve:.0f} GB KV-cache reserve"
        f" = {need:.0f} GB vs {gpu_count} x {per_gpu:.0f} GB x {fraction:.2f} usable"
        f" = {usable:.0f} GB: {'fits' if fits else 'DOES NOT FIT'}"
    )
    hint = None
    if not fits and per_gpu > 0:
        gpus_needed = int(-(-need // (per_gpu * fraction)))
        hint = (
            f"give group {replica.name} at least {gpus_needed} GPUs of {per_gpu:.0f} GB"
            f" (e.g. more nodes with tp={_next_pow2(gpus_needed)}), larger GPUs,"
            " or a smaller or more quantized model"
        )
    elif per_gpu == 0:
        hint = "set sglfleet_gpu_model (e.g. H100-SXM-80GB) or sglfleet_gpu_memory_gb on each host"
    return MemoryFit(
        fits=fits,
        weights_gb=model.weights_gb,
        kv_cache_reserve_gb=reserve,
        usable_gb=usable,
        gpu_count=gpu_count,
        gpu_memory_gb=per_gpu,
        message=message,
        hint=hint,
    )


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_tokens(options: dict[str, Any]) -> list[str]:
    tokens: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            tokens.append(_flag(key))
        elif isinstance(value, list | tuple):
            tokens.append(_flag(key))
            tokens.extend(str(v) for v in value)
        else:
            tokens += [_flag(key), str(value)]
    return tokens


def group_tp(inv: Inventory, replica: Replica) -> int:
    spec = replica.spec
    if spec.tp:
        return spec.tp
    gpus = sum(inv.hosts[h].gpu_count for h in replica.hosts if h in inv.hosts)
    dp = spec.dp if not spec.attn_dp else 1
    return max(1, gpus // max(1, dp))


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
    args += _option_tokens(spec.server_args)
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


def replicas(inv: Inventory) -> list[Replica]:
    out: list[Replica] = []
    for spec in inv.serving_groups:
        out.extend(expand_replicas(spec))
    return out


def check(inv: Inventory, include_memory: bool = True) -> list[Problem]:
    """Cross-reference checks the typed model cannot express on its own.

    With `include_memory`, a group whose model does not fit its GPUs is a problem too (the
    Ansible preflight wants that); `plan()` leaves it out so the plan can still be shown.
    """
    problems: list[Problem] = []
    seen_host: dict[str, str] = {}
    names: set[str] = set()
    spec_names = [s.name for s in inv.serving_groups]
    unique_specs = len(spec_names) == len(set(spec_names))  # else validate reports the names
    for replica in replicas(inv):
        spec = replica.spec
        var = f"sglfleet_serving_groups[{spec.name}]"
        if replica.name in names and unique_specs:
            problems.append(
                Problem(
                    f"two engine instances are named {replica.name}",
                    f"rename group {spec.name}: replicas of a group are named NAME-0, NAME-1, ...",
                    variable=f"{var}.name",
                )
            )
        names.add(replica.name)
        if spec.model not in inv.models:
            close = difflib.get_close_matches(spec.model, sorted(inv.models), n=1, cutoff=0.6)
            problems.append(
                Problem(
                    f"group {spec.name} serves model `{spec.model}`, which sglfleet_models lacks",
                    (f"did you mean `{close[0]}`? " if close else "")
                    + f"add `{spec.model}` to sglfleet_models or use one of: "
                    + ", ".join(sorted(inv.models) or ["(none defined)"]),
                    variable=f"{var}.model",
                )
            )
        if not replica.hosts:
            problems.append(
                Problem(
                    f"group {spec.name} has no hosts",
                    "list the inventory hosts that run it under `hosts:`",
                    variable=f"{var}.hosts",
                )
            )
            continue
        missing = [h for h in replica.hosts if h not in inv.hosts]
        for host in missing:
            problems.append(
                Problem(
                    f"group {spec.name} lists host {host}, which hosts.yml does not define",
                    f"add {host} to hosts.yml or fix the name in {var}.hosts",
                    host=host,
                    variable=f"{var}.hosts",
                )
            )
        if missing:
            continue
        for host in dict.fromkeys(replica.hosts):  # a host listed twice is validate's to report
            if host in seen_host:
                problems.append(
                    Problem(
                        f"host is in two serving groups ({seen_host[host]} and {replica.name})",
                        "a node's GPUs serve one group: remove it from one of them",
                        host=host,
                        variable=f"{var}.hosts",
                    )
                )
            seen_host[host] = replica.name
            h = inv.hosts[host]
            if h.gpu_count <= 0:
                problems.append(
                    Problem(
                        "serving host declares no GPUs",
                        "set sglfleet_gpu_count to the number of GPUs in the node",
                        host=host,
                        variable="sglfleet_gpu_count",
                    )
                )
        if len(replica.hosts) > 1:
            for host in replica.hosts:
                if not inv.hosts[host].fabric_address:
                    problems.append(
                        Problem(
                            f"multi-node group {replica.name} needs each member's fabric address",
                            "set sglfleet_fabric_address to the node's IP on the GPU fabric",
                            host=host,
                            variable="sglfleet_fabric_address",
                        )
                    )
        gpus = sum(inv.hosts[h].gpu_count for h in replica.hosts)
        tp = group_tp(inv, replica)
        dp = spec.dp if not spec.attn_dp else 1
        uneven = bool(spec.nodes_per_replica) and len(spec.hosts) % (spec.nodes_per_replica or 1)
        sizes_valid = dp >= 1 and (spec.tp is None or spec.tp >= 1) and not uneven
        if sizes_valid and gpus > 0 and tp * dp != gpus:
            problems.append(
                Problem(
                    f"group {replica.name} has {gpus} GPUs but tp={tp} x dp={dp} uses {tp * dp}",
                    f"set tp so that tp x dp = {gpus} (e.g. tp={gpus // max(dp, 1)})",
                    variable=f"{var}.tp",
                )
            )
        if spec.mode != "regular" and spec.disaggregation is None:
            problems.append(
                Problem(
                    f"{spec.mode} group {spec.name} needs its transfer settings",
                    "add `disaggregation: {transfer_backend: mooncake, ib_device: mlx5_0}`",
                    variable=f"{var}.disaggregation",
                )
            )
    modes = {s.mode for s in inv.serving_groups}
    if ("prefill" in modes) != ("decode" in modes):
        problems.append(
            Problem(
                "prefill groups need decode groups to pair with, and the other way round",
                "add the missing prefill or decode group, or set mode: regular",
                variable="sglfleet_serving_groups",
            )
        )
    if inv.router is not None and inv.router.host not in inv.hosts:
        problems.append(
            Problem(
                f"router host {inv.router.host} is not in hosts.yml",
                "set sglfleet_router.host to an inventory host",
                host=inv.router.host,
                variable="sglfleet_router.host",
            )
        )
    if inv.router is None and len(replicas(inv)) > 1:
        problems.append(
            Problem(
                "several serving groups but no router in front of them",
                "set sglfleet_router: {host: HOST, port: 8000}",
                variable="sglfleet_router",
            )
        )
    problems += _port_clashes(inv)
    problems += port_problems(inv)
    from sglfleet.validate import inventory_checks

    problems += inventory_checks(inv)
    if include_memory and not problems:
        problems += memory_problems(inv)
    from sglfleet.validate import readable_order

    return readable_order(problems)


def memory_problems(inv: Inventory) -> list[Problem]:
    """One problem per engine instance whose model does not fit its GPUs."""
    problems: list[Problem] = []
    for replica in replicas(inv):
        model = inv.models.get(replica.spec.model)
        if model is None or not replica.hosts:
            continue
        fit = memory_fit(inv, replica, model)
        if not fit.fits:
            problems.append(
                Problem(
                    f"group {replica.name}: {fit.message}",
                    fit.hint or "give the group more or larger GPUs",
                    variable=f"sglfleet_serving_groups[{replica.spec.name}].hosts",
                )
            )
    return problems


def _port_clashes(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    used: dict[tuple[str, int], str] = {}

    def claim(host: str, port: int, what: str, variable: str) -> None:
        key = (host, port)
        if key in used and used[key] != what:
            problems.append(
                Problem(
                    f"port {port} is used by both {used[key]} and {what}",
                    f"give each service on {host} its own port: change {variable}",
                    host=host,
                    variable=variable,
                )
            )
        used.setdefault(key, what)

    for replica in replicas(inv):
        spec = replica.spec
        var = f"sglfleet_serving_groups[{spec.name}]"
        multi = len(replica.hosts) > 1
        for host in dict.fromkeys(replica.hosts):
            claim(host, spec.port, f"{replica.name} API", f"{var}.port")
            if multi:
                claim(
                    host, spec.dist_init_port, f"{replica.name} dist-init", f"{var}.dist_init_port"
                )
            if multi and spec.attn_dp:
                # With DP attention SGLang binds dist_init_port+1 .. +6 for its ZMQ channels.
                for offset in range(1, ATTN_DP_DERIVED_PORTS + 1):
                    claim(
                        host,
                        spec.dist_init_port + offset,
                        f"{replica.name} dist-init+{offset} (DP attention)",
                        f"{var}.dist_init_port",
                    )
            if spec.nccl_port:
                claim(host, spec.nccl_port, f"{replica.name} NCCL", f"{var}.nccl_port")
            if spec.mode == "prefill" and spec.disaggregation is not None:
                claim(
                    host,
                    spec.disaggregation.bootstrap_port,
                    f"{replica.name} PD bootstrap",
                    f"{var}.disaggregation.bootstrap_port",
                )
    if inv.router is not None:
        claim(inv.router.host, inv.router.port, "router", "sglfleet_router.port")
        claim(
            inv.router.host,
            inv.router.metrics_port,
            "router metrics",
            "sglfleet_router.metrics_port",
        )
    return problems


def plan(inv: Inventory, *, checked: bool = False) -> ClusterPlan:
    """The whole cluster's plan. Raises InventoryError when cross-checks fail.

    `checked`: the caller already ran `check(inv)` and found nothing (skips a second pass).
    """
    problems = [] if checked else check(inv, include_memory=False)
    if problems:
        raise InventoryError(problems, inv.path)
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


def router_workers(inv: Inventory, cluster: ClusterPlan | None = None) -> dict[str, Any]:
    """What the router fronts: rank-0 URLs of regular groups, or prefill/decode pairs."""
    cluster = plan(inv) if cluster is None else cluster
    regular: list[str] = []
    prefill: list[dict[str, Any]] = []
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
