"""Is the inventory valid: the one answer, before any host is touched.

`problems()` runs every check: the value checks of `validate`, the cross-references between
groups, hosts, models and the router, what members, PD pairs and one router's names must agree
on (`consistency`), port clashes of every port sglfleet opens, the firewall's pinned ports and,
unless left out, whether each model fits its GPUs. Each problem names the host, the variable and
the fix.
`partial()` is the same for an inventory some of whose parts did not type (load_inventory calls
it, so that one run reports every mistake). `require_valid()` raises them as InventoryError,
`require_fit()` the models that do not fit their GPUs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sglfleet.cluster import group_tp, memory_fit, replicas
from sglfleet.consistency import (
    architecture_problems,
    group_shape_problems,
    namespace_problems,
    pd_problems,
    port_claims,
    router_version_problems,
)
from sglfleet.errors import InventoryError, Problem, readable_order
from sglfleet.models import Inventory
from sglfleet.security import port_problems
from sglfleet.validate import inventory_checks
from sglfleet_sglang.ports import ATTN_DP_DERIVED_PORTS


def require_fit(inv: Inventory) -> None:
    """Raise InventoryError (exit 2) naming every group whose model does not fit its GPUs."""
    found = memory_problems(inv)
    if found:
        raise InventoryError(found, inv.path)


def require_valid(inv: Inventory, *, include_memory: bool = True) -> None:
    """Raise InventoryError (exit 2) with every problem; return when there is none."""
    found = problems(inv, include_memory=include_memory)
    if found:
        raise InventoryError(found, inv.path)


def problems(inv: Inventory, include_memory: bool = True) -> list[Problem]:
    """Cross-reference checks the typed model cannot express on its own.

    With `include_memory`, a group whose model does not fit its GPUs is a problem too (the
    Ansible preflight wants that); `plan()` leaves it out so the plan can still be shown.
    """
    found: list[Problem] = []
    seen_host: dict[str, str] = {}
    names: set[str] = set()
    spec_names = [s.name for s in inv.serving_groups]
    unique_specs = len(spec_names) == len(set(spec_names))  # else validate reports the names
    for replica in replicas(inv):
        spec = replica.spec
        var = f"sglfleet_serving_groups[{spec.name}]"
        if replica.name in names and unique_specs:
            found.append(
                Problem(
                    f"two engine instances are named {replica.name}",
                    f"rename group {spec.name}: replicas of a group are named NAME-0, NAME-1, ...",
                    variable=f"{var}.name",
                )
            )
        names.add(replica.name)
        if spec.model not in inv.models:
            close = difflib.get_close_matches(spec.model, sorted(inv.models), n=1, cutoff=0.6)
            found.append(
                Problem(
                    f"group {spec.name} serves model `{spec.model}`, which sglfleet_models lacks",
                    (f"did you mean `{close[0]}`? " if close else "")
                    + f"add `{spec.model}` to sglfleet_models or use one of: "
                    + ", ".join(sorted(inv.models) or ["(none defined)"]),
                    variable=f"{var}.model",
                )
            )
        if not replica.hosts:
            found.append(
                Problem(
                    f"group {spec.name} has no hosts",
                    "list the inventory hosts that run it under `hosts:`",
                    variable=f"{var}.hosts",
                )
            )
            continue
        missing = [h for h in replica.hosts if h not in inv.hosts]
        for host in missing:
            found.append(
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
                found.append(
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
                found.append(
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
                    found.append(
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
            found.append(
                Problem(
                    f"group {replica.name} has {gpus} GPUs but tp={tp} x dp={dp} uses {tp * dp}",
                    f"set tp so that tp x dp = {gpus} (e.g. tp={gpus // max(dp, 1)})",
                    variable=f"{var}.tp",
                )
            )
        if spec.mode != "regular" and spec.disaggregation is None:
            found.append(
                Problem(
                    f"{spec.mode} group {spec.name} needs its transfer settings",
                    "add `disaggregation: {transfer_backend: mooncake, ib_device: mlx5_0}`",
                    variable=f"{var}.disaggregation",
                )
            )
    modes = {s.mode for s in inv.serving_groups}
    if ("prefill" in modes) != ("decode" in modes):
        found.append(
            Problem(
                "prefill groups need decode groups to pair with, and the other way round",
                "add the missing prefill or decode group, or set mode: regular",
                variable="sglfleet_serving_groups",
            )
        )
    if inv.router is not None and inv.router.host not in inv.hosts:
        found.append(
            Problem(
                f"router host {inv.router.host} is not in hosts.yml",
                "set sglfleet_router.host to an inventory host",
                host=inv.router.host,
                variable="sglfleet_router.host",
            )
        )
    if inv.router is None and len(replicas(inv)) > 1:
        found.append(
            Problem(
                "several serving groups but no router in front of them",
                "set sglfleet_router: {host: HOST, port: 8000}",
                variable="sglfleet_router",
            )
        )
    found += group_shape_problems(inv)
    found += architecture_problems(inv)
    found += router_version_problems(inv)
    found += pd_problems(inv)
    found += namespace_problems(inv)
    found += _port_clashes(inv)
    found += port_problems(inv)
    found += inventory_checks(inv)
    if include_memory and not found:
        found += memory_problems(inv)
    return readable_order(found)


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
    for host, port, what, variable in port_claims(inv):
        claim(host, port, what, variable)
    return problems


def partial(
    inv: Inventory,
    *,
    failed_hosts: Iterable[str] = (),
    failed_models: Iterable[str] = (),
    failed_groups: Iterable[str] = (),
    router_failed: bool = False,
) -> list[Problem]:
    """Cross-checks of the parts that typed, minus what only follows from the parts that did not."""
    bad_hosts = set(failed_hosts)
    bad_models = set(failed_models)
    bad_groups = set(failed_groups)
    kept: list[Problem] = []
    for problem in problems(inv):
        variable = problem.variable or ""
        if problem.host and problem.host in bad_hosts:
            continue
        if variable.endswith(".model") and any(f"`{m}`" in problem.message for m in bad_models):
            continue
        if router_failed and variable.startswith("sglfleet_router"):
            continue
        if bad_groups and variable == "sglfleet_serving_groups":
            continue
        kept.append(problem)
    return kept
