"""Inventory checks beyond types and cross-references: values, addresses, ports, SGLang flags.

Pure functions of the typed inventory; no I/O, no host is contacted. `checks.problems()` calls
`inventory_checks()` and adds the cross-references between groups, hosts, models and router.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from typing import Any

from sglfleet.cluster import gpu_memory_gb, option_tokens
from sglfleet.errors import Problem
from sglfleet.gpu_stack import gpu_stack_checks
from sglfleet.models import Inventory, ModelSpec, ServingGroupSpec
from sglfleet.server_config import ServerConfigError, resolve, tokens_to_config
from sglfleet_sglang import SGLANG_VERSION
from sglfleet_sglang.catalog import known_versions, load_catalog, type_functions

HUBS = ("huggingface", "modelscope")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
PRIVILEGED_BELOW = 1024
ALLOW_PRIVILEGED = "sglfleet_allow_privileged_ports"
GPU_NODES_GROUP = "sglfleet_gpu_nodes"
ROUTERS_GROUP = "sglfleet_routers"

# SGLang flags sglfleet refuses to serve with, by the parser's dest, and why (docs/security.md).
UNSAFE_FLAGS = {
    "enable_custom_logit_processor": (
        "it lets each request carry a logit processor that SGLang unpickles with dill.loads"
        " (CVE-2026-7304), so anyone holding the API key can run code on the GPU nodes"
    ),
}

# SGLang flags sglfleet sets itself, by the parser's dest, and the inventory key that sets them.
MANAGED_FLAGS = {
    "model_path": "sglfleet_models (the group's `model`)",
    "served_model_name": "sglfleet_models.<model>.served_name",
    "tp_size": "`tp`",
    "dp_size": "`dp`",
    "ep_size": "`ep`",
    "host": "sglfleet_service_address on the host",
    "port": "`port`",
    "nnodes": "`hosts` and `nodes_per_replica`",
    "node_rank": "the order of `hosts`",
    "dist_init_addr": "`dist_init_port` and the hosts' sglfleet_fabric_address",
    "nccl_port": "`nccl_port`",
    "mem_fraction_static": "`mem_fraction_static`",
    "api_key": "sglfleet_api_key",
    "disaggregation_mode": "`mode`",
    "disaggregation_transfer_backend": "`disaggregation.transfer_backend`",
    "disaggregation_bootstrap_port": "`disaggregation.bootstrap_port`",
    "disaggregation_ib_device": "`disaggregation.ib_device`",
}


def group_var(spec: ServingGroupSpec) -> str:
    return f"sglfleet_serving_groups[{spec.name}]"


def inventory_checks(inv: Inventory) -> list[Problem]:
    """Every value-level check; each problem names host, variable (as written) and the fix."""
    problems: list[Problem] = []
    problems += _cluster_checks(inv)
    for model in inv.models.values():
        problems += _model_checks(model)
    problems += _host_checks(inv)
    problems += _address_clashes(inv)
    names: dict[str, int] = {}
    for spec in inv.serving_groups:
        names[spec.name] = names.get(spec.name, 0) + 1
        problems += _group_checks(inv, spec)
        problems += _server_flag_checks(spec)
    for name, count in names.items():
        if count > 1:
            problems.append(
                Problem(
                    f"{count} serving groups are named {name}",
                    "give each entry of sglfleet_serving_groups a unique `name`",
                    variable=f"sglfleet_serving_groups[{name}].name",
                )
            )
    problems += _router_checks(inv)
    problems += gpu_stack_checks(inv)
    return problems


def _port_problem(
    port: int, variable: str, allow_privileged: bool, host: str | None = None
) -> Problem | None:
    if not 1 <= port <= 65535:
        return Problem(
            f"port {port} is not a TCP port",
            "use a port between 1024 and 65535",
            host=host,
            variable=variable,
        )
    if port < PRIVILEGED_BELOW and not allow_privileged:
        return Problem(
            f"port {port} is privileged (below {PRIVILEGED_BELOW}); the services run unprivileged",
            f"use a port from 1024 up (e.g. {port + 8000 if port + 8000 < 65536 else 8000}),"
            f" or set {ALLOW_PRIVILEGED}: true if the units are granted CAP_NET_BIND_SERVICE",
            host=host,
            variable=variable,
        )
    return None


def _cluster_checks(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    if inv.sglang_version != SGLANG_VERSION:
        known = known_versions()
        problems.append(
            Problem(
                f"sglfleet has no flag catalog for SGLang {inv.sglang_version}: it knows "
                + ", ".join(known)
                + f" and installs {SGLANG_VERSION}; flags, config-file keys and ports would be "
                "checked against another release",
                f'pin `sglfleet_sglang_version: "{SGLANG_VERSION}"` (or remove it), or add the '
                "release: dump its parser with `python tools/dump_sglang_flags.py` in a venv with "
                "that SGLang and move sglfleet_sglang.SGLANG_VERSION to it "
                "(docs/rehearsal-engine.md)",
                variable="sglfleet_sglang_version",
            )
        )
    for variable, value in (
        ("sglfleet_install_dir", inv.install_dir),
        ("sglfleet_config_dir", inv.config_dir),
        ("sglfleet_models_dir", inv.models_dir),
    ):
        if not value.startswith("/"):
            problems.append(
                Problem(
                    f"{variable} is {value!r}, not an absolute path",
                    f"write an absolute directory, e.g. `{variable}: /{value.lstrip('./')}`",
                    variable=variable,
                )
            )
    allow = inv.global_vars.get(ALLOW_PRIVILEGED, False)
    if not isinstance(allow, bool):
        problems.append(
            Problem(
                f"{ALLOW_PRIVILEGED} is {allow!r}",
                "write `true` or `false`",
                variable=ALLOW_PRIVILEGED,
            )
        )
    return problems


def _model_checks(model: ModelSpec) -> list[Problem]:
    var = f"sglfleet_models.{model.name}"
    problems: list[Problem] = []
    if model.weights_gb <= 0:
        problems.append(
            Problem(
                f"model {model.name} has weights_gb {model.weights_gb}",
                "set weights_gb to the size of the weights on disk in GB (e.g. 690 for R1 FP8)",
                variable=f"{var}.weights_gb",
            )
        )
    if model.kv_cache_reserve_gb is not None and model.kv_cache_reserve_gb < 0:
        problems.append(
            Problem(
                f"model {model.name} has a negative kv_cache_reserve_gb",
                "set kv_cache_reserve_gb to 0 or more, or leave it out (10% of the weights)",
                variable=f"{var}.kv_cache_reserve_gb",
            )
        )
    if model.hub in HUBS:
        if not (model.repo_id or "").strip():
            problems.append(
                Problem(
                    f"model {model.name} comes from {model.hub} but has no repo_id",
                    f"set repo_id to the {model.hub} repository, e.g. `repo_id: Qwen/Qwen3-8B`",
                    variable=f"{var}.repo_id",
                )
            )
        if not model.revision.strip():
            problems.append(
                Problem(
                    f"model {model.name} has an empty revision",
                    f"pin the {model.hub} commit: `revision:` followed by its 40-character SHA",
                    variable=f"{var}.revision",
                )
            )
        elif not COMMIT.match(model.revision):
            problems.append(
                Problem(
                    f"model {model.name} revision {model.revision!r} is not a commit SHA",
                    "pin the exact commit (40 hex characters from the hub's history) so every"
                    " node serves the same weights; branches and tags move",
                    variable=f"{var}.revision",
                )
            )
    elif not (model.mirror_path or "").startswith("/"):
        problems.append(
            Problem(
                f"model {model.name} (hub: {model.hub}) needs an absolute mirror_path",
                "set mirror_path to the directory holding the files and .sglfleet-hub-tree.json,"
                " or use hub: huggingface with repo_id and revision",
                variable=f"{var}.mirror_path",
            )
        )
    return problems


def _host_checks(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    serving = {h for spec in inv.serving_groups for h in spec.hosts}
    for name, host in inv.hosts.items():
        if host.fabric_address is not None:
            try:
                ipaddress.ip_address(host.fabric_address)
            except ValueError:
                problems.append(
                    Problem(
                        f"fabric address {host.fabric_address!r} is not an IP address",
                        "set sglfleet_fabric_address to the node's IP on the GPU fabric"
                        " (e.g. 10.20.0.11), not a host name or CIDR",
                        host=name,
                        variable="sglfleet_fabric_address",
                    )
                )
        if host.gpu_count < 0:
            problems.append(
                Problem(
                    f"sglfleet_gpu_count is {host.gpu_count}",
                    "set sglfleet_gpu_count to the number of GPUs in the node (0 or more)",
                    host=name,
                    variable="sglfleet_gpu_count",
                )
            )
        if host.gpu_memory_gb is not None and host.gpu_memory_gb <= 0:
            problems.append(
                Problem(
                    f"sglfleet_gpu_memory_gb is {host.gpu_memory_gb}",
                    "set it to one GPU's memory in GB (e.g. 80), or leave it out",
                    host=name,
                    variable="sglfleet_gpu_memory_gb",
                )
            )
        if name not in serving:
            continue
        if host.gpu_count > 0 and gpu_memory_gb(host) is None:
            what = f"GPU model {host.gpu_model!r} is unknown" if host.gpu_model else "no GPU model"
            problems.append(
                Problem(
                    f"{what} and no sglfleet_gpu_memory_gb: the memory check cannot run",
                    "set sglfleet_gpu_memory_gb (one GPU's memory in GB, e.g. 80), or a known"
                    " sglfleet_gpu_model such as H100-SXM5-80GB, H200-SXM-141GB, L40S-48GB",
                    host=name,
                    variable="sglfleet_gpu_model",
                )
            )
        if GPU_NODES_GROUP not in host.groups:
            problems.append(
                Problem(
                    f"host serves a group but is not in {GPU_NODES_GROUP}: nothing would set it up",
                    f"add it under `{GPU_NODES_GROUP}: hosts:` in hosts.yml",
                    host=name,
                    variable=f"{GPU_NODES_GROUP}.hosts",
                )
            )
    return problems


def _address_clashes(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    ssh: dict[tuple[str, str], str] = {}
    fabric: dict[str, str] = {}
    for name, host in inv.hosts.items():
        if host.ansible_host:
            key = (host.ansible_host, str(host.vars.get("ansible_port", 22)))
            if key in ssh:
                problems.append(
                    Problem(
                        f"ansible_host {host.ansible_host} is also {ssh[key]}'s address:"
                        " both names would configure one machine",
                        f"give {name} its own ansible_host, or remove the duplicate entry",
                        host=name,
                        variable="ansible_host",
                    )
                )
            else:
                ssh[key] = name
        if host.fabric_address:
            if host.fabric_address in fabric:
                problems.append(
                    Problem(
                        f"fabric address {host.fabric_address} is also"
                        f" {fabric[host.fabric_address]}'s",
                        "set sglfleet_fabric_address to this node's own IP on the GPU fabric",
                        host=name,
                        variable="sglfleet_fabric_address",
                    )
                )
            else:
                fabric[host.fabric_address] = name
    return problems


def _group_checks(inv: Inventory, spec: ServingGroupSpec) -> list[Problem]:
    var = group_var(spec)
    problems: list[Problem] = []
    for key in ("tp", "dp", "ep", "attn_dp", "nodes_per_replica"):
        value = getattr(spec, key)
        if value is not None and value < 1:
            problems.append(
                Problem(
                    f"group {spec.name} has {key}={value}",
                    f"set {key} to 1 or more" + (" (or leave it out)" if key != "dp" else ""),
                    variable=f"{var}.{key}",
                )
            )
    if spec.mem_fraction_static is not None and not 0 < spec.mem_fraction_static < 1:
        problems.append(
            Problem(
                f"group {spec.name} has mem_fraction_static={spec.mem_fraction_static}",
                "set a fraction between 0 and 1 (e.g. 0.88), or leave it out for SGLang's choice",
                variable=f"{var}.mem_fraction_static",
            )
        )
    seen: set[str] = set()
    for rank, host in enumerate(spec.hosts):
        if host in seen:
            problems.append(
                Problem(
                    f"host is listed twice in group {spec.name} (again as rank {rank}):"
                    " two ranks would collide on one node",
                    f"list each host once in {var}.hosts",
                    host=host,
                    variable=f"{var}.hosts",
                )
            )
        seen.add(host)
    per = spec.nodes_per_replica
    if per and per >= 1 and spec.hosts and len(spec.hosts) % per:
        problems.append(
            Problem(
                f"group {spec.name} has {len(spec.hosts)} hosts, not a multiple of"
                f" nodes_per_replica={per}",
                f"list a multiple of {per} hosts, or set nodes_per_replica to a divisor of"
                f" {len(spec.hosts)}",
                variable=f"{var}.nodes_per_replica",
            )
        )
    if spec.attn_dp and spec.tp and spec.attn_dp >= 1 and spec.tp % spec.attn_dp:
        problems.append(
            Problem(
                f"group {spec.name}: attn_dp={spec.attn_dp} does not divide tp={spec.tp}",
                "SGLang splits the TP ranks into attention-DP groups: pick a divisor of tp",
                variable=f"{var}.attn_dp",
            )
        )
    allow = inv.global_vars.get(ALLOW_PRIVILEGED) is True
    ports = [(spec.port, "port"), (spec.dist_init_port, "dist_init_port")]
    if spec.nccl_port is not None:
        ports.append((spec.nccl_port, "nccl_port"))
    if spec.disaggregation is not None:
        ports.append((spec.disaggregation.bootstrap_port, "disaggregation.bootstrap_port"))
    for port, key in ports:
        problem = _port_problem(port, f"{var}.{key}", allow)
        if problem:
            problems.append(problem)
    return problems + _disaggregation_checks(inv, spec)


def _disaggregation_checks(inv: Inventory, spec: ServingGroupSpec) -> list[Problem]:
    """The transfer backend sglfleet can install, and KV-transfer NICs each host has."""
    dis = spec.disaggregation
    if dis is None or spec.mode == "regular":
        return []
    var = f"{group_var(spec)}.disaggregation"
    problems: list[Problem] = []
    if dis.transfer_backend == "ascend":
        problems.append(
            Problem(
                f"group {spec.name} uses transfer_backend ascend, which is for Huawei Ascend NPUs",
                "use mooncake or nixl (sglfleet installs their CUDA-13 builds for NVIDIA GPUs)",
                variable=f"{var}.transfer_backend",
            )
        )
    device = (dis.ib_device or "").strip()
    # A per-GPU JSON mapping or a JSON file is SGLang's to read; a list is checked here.
    if not device or device.startswith("{") or device.endswith(".json"):
        return problems
    names = [name.strip() for name in device.split(",")]
    if "" in names:
        problems.append(
            Problem(
                f"group {spec.name} has an empty entry in ib_device {device!r}",
                "list HCAs separated by commas, e.g. mlx5_0,mlx5_1",
                variable=f"{var}.ib_device",
            )
        )
    for host_name in spec.hosts:
        host = inv.hosts.get(host_name)
        if host is None or not host.rdma_hcas:
            continue
        unknown = [name for name in names if name and name not in host.rdma_hcas]
        if unknown:
            problems.append(
                Problem(
                    f"group {spec.name} sends KV caches over {', '.join(unknown)}, which the host"
                    f" does not list in sglfleet_rdma_hcas ({', '.join(host.rdma_hcas)})",
                    f"set {var}.ib_device to HCAs of every host of the group (comma-separated)",
                    host=host_name,
                    variable=f"{var}.ib_device",
                )
            )
    return problems


def _flag_problems(
    tokens: list[str], variable: str, catalog: Any, by_option: dict[str, Any]
) -> list[Problem]:
    try:
        tokens_to_config(tokens, catalog)
    except ServerConfigError as exc:
        return [
            Problem(
                str(exc),
                "use a flag of `sglang serve --help` for the pinned SGLang (see the suggestion),"
                " in server_args as `flag_name: value`",
                variable=variable,
            )
        ]
    problems: list[Problem] = []
    types = type_functions(catalog)
    values: list[str] = []
    groups: list[tuple[Any, str, list[str]]] = []
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            option, _, value = token.partition("=")
            values = [value] if "=" in token else []
            groups.append((resolve(option, catalog), option, values))
        else:
            values.append(token)
    for flag, written, flag_values in groups:
        spelled = flag.name if written == flag.name else f"{written} ({flag.name})"
        if flag.dest in UNSAFE_FLAGS and not (flag_values and flag_values[-1].lower() == "false"):
            problems.append(
                Problem(
                    f"{spelled} is refused: {UNSAFE_FLAGS[flag.dest]}",
                    "remove it; sglfleet does not serve with it (docs/security.md)",
                    variable=variable,
                )
            )
            continue
        if flag.dest in MANAGED_FLAGS:
            problems.append(
                Problem(
                    f"{spelled} is set by sglfleet; here it would override {flag.dest}",
                    f"remove it and set {MANAGED_FLAGS[flag.dest]} instead",
                    variable=variable,
                )
            )
            continue
        convert = types.get(flag.type) if flag.type else None
        for value in flag_values:
            try:
                converted = convert(value) if convert else value
            except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
                problems.append(
                    Problem(
                        f"{flag.name} {value!r} is not a valid {flag.type} ({exc})",
                        f"give {flag.name} a {flag.type} value",
                        variable=variable,
                    )
                )
                continue
            if flag.choices and converted not in flag.choices:
                problems.append(
                    Problem(
                        f"{flag.name} {value!r} is not one of SGLang's choices",
                        "use one of: " + ", ".join(str(c) for c in flag.choices),
                        variable=variable,
                    )
                )
    return problems


def _server_flag_checks(spec: ServingGroupSpec) -> list[Problem]:
    """server_args and extra_args must be flags the pinned SGLang accepts, with valid values."""
    if not spec.server_args and not spec.extra_args:
        return []

    catalog = load_catalog()
    by_option = catalog.by_option()
    var = group_var(spec)
    problems: list[Problem] = []
    for key, value in spec.server_args.items():
        problems += _flag_problems(
            option_tokens({key: value}), f"{var}.server_args.{key}", catalog, by_option
        )
    if spec.extra_args:
        problems += _flag_problems(list(spec.extra_args), f"{var}.extra_args", catalog, by_option)
    return problems


def _router_checks(inv: Inventory) -> list[Problem]:
    router = inv.router
    if router is None:
        return []
    problems: list[Problem] = []
    allow = inv.global_vars.get(ALLOW_PRIVILEGED) is True
    for port, key in ((router.port, "port"), (router.metrics_port, "metrics_port")):
        problem = _port_problem(port, f"sglfleet_router.{key}", allow, router.host)
        if problem:
            problems.append(problem)
    try:
        ipaddress.ip_address(router.bind_address)
    except ValueError:
        problems.append(
            Problem(
                f"router bind_address {router.bind_address!r} is not an IP address",
                "use 0.0.0.0 (all interfaces) or one of the router host's IPs",
                host=router.host,
                variable="sglfleet_router.bind_address",
            )
        )
    for key in ("retries", "circuit_breaker_failures", "health_check_interval_s"):
        if getattr(router, key) < 0:
            problems.append(
                Problem(
                    f"sglfleet_router.{key} is negative",
                    f"set {key} to 0 or more",
                    variable=f"sglfleet_router.{key}",
                )
            )
    host = inv.hosts.get(router.host)
    if host is not None and ROUTERS_GROUP not in host.groups:
        problems.append(
            Problem(
                f"router host is not in {ROUTERS_GROUP}: no router would be installed",
                f"add {router.host} under `{ROUTERS_GROUP}: hosts:` in hosts.yml",
                host=router.host,
                variable="sglfleet_router.host",
            )
        )
    return problems
