"""The inventory -> role contract: the values the plan hands to roles, typed once.

Each planner-fed role input is a TypedDict here (`PLANNER_FED`; `FILTER_FED` for a list input a
filter finishes on the host from the plan). The planner functions that build them are
annotated with these types (mypy checks them), and the options of the roles'
`meta/argument_specs.yml` are generated from them (`python -m sglfleet.docgen`, between
`# generated: spec-<input>` and `# end: spec-<input>`), as is the table in docs/architecture.md.
A field's description is the string in its `Annotated[...]`; `X | None` is an optional option;
a `Literal[...]` becomes the option's `choices`.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, TypedDict, Union

from sglfleet.models import Mode

Protocol = Literal["tcp", "udp"]


class LaunchRecord(TypedDict):
    """What one node serves (`sglfleet_plan.launch` -> `sglang_server_launch`)."""

    group: Annotated[str, "Engine instance (serving group replica) name."]
    model: Annotated[str, "Model name under sglfleet_models."]
    mode: Annotated[Mode, "The group's serving mode."]
    nnodes: Annotated[int, "Nodes in the engine instance."]
    node_rank: Annotated[int, "This node's rank in it."]
    argv: Annotated[list[str], "The unit's ExecStart."]
    server_args: Annotated[list[str], "SGLang flags as tokens (no API key)."]
    config: Annotated[dict[str, Any], "The same flags as the --config file's mapping."]
    env: Annotated[dict[str, str], "The unit's environment (server.env)."]
    nccl_env: Annotated[dict[str, str], "NCCL/Gloo variables nccl_tuning writes."]
    unit: Annotated[str, "The systemd unit name."]
    port: Annotated[int, "SGLang's HTTP port."]
    service_address: Annotated[str, "The address SGLang binds."]
    rank0_url: Annotated[str, "The instance's API URL (rank 0)."]
    dist_init_addr: Annotated[str | None, "rank 0 fabric address:port; null on one node."]
    members: Annotated[list[str], "The instance's hosts by rank."]
    member_urls: Annotated[list[str], "Each member's API URL."]
    model_dir: Annotated[str, "Where the model's weights are staged."]


class PrefillWorker(TypedDict):
    url: Annotated[str, "Rank-0 URL."]
    bootstrap_port: Annotated[int | None, "The group's PD bootstrap port."]


class EngineRef(TypedDict):
    name: Annotated[str, "Engine instance name."]
    url: Annotated[str, "Rank-0 URL."]
    mode: Annotated[Mode, "Serving mode."]


class RouterWorkers(TypedDict):
    """What the router fronts (`sglfleet_plan.router_workers` -> `sglang_router_workers`)."""

    pd: Annotated[bool, "Prefill/decode pairs rather than regular workers."]
    worker_urls: Annotated[list[str], "Rank-0 URLs of regular groups."]
    prefill: Annotated[list[PrefillWorker], "Prefill groups."]
    decode: Annotated[list[str], "Rank-0 URLs of decode groups."]
    groups: Annotated[list[EngineRef], "Every engine instance (name, url, mode), fronted or not."]


class StaticConfig(TypedDict):
    targets: Annotated[list[str], "host:port of each target."]
    labels: Annotated[dict[str, str], "Labels of the targets."]


class MonitoringTargets(TypedDict):
    """Scrape targets by job (`sglfleet_plan.monitoring_targets` -> its role input)."""

    sglang: Annotated[list[StaticConfig], "Static configs of the job."]
    router: Annotated[list[StaticConfig], "Static configs of the job."]
    node: Annotated[list[StaticConfig], "Static configs of the job."]
    dcgm: Annotated[list[StaticConfig], "Static configs of the job."]


class _Rule(TypedDict):
    name: Annotated[str, "Rule name (unique on the host)."]
    comment: Annotated[str, "Who may connect, in words (the nft comment)."]
    protocol: Annotated[Protocol, "Transport protocol."]


class RuleTemplate(_Rule):
    """An accept rule as the plan knows it: audiences and port tokens the run fills in."""

    ports: Annotated[list[str], "Ports, ranges or a token the run fills (ephemeral, metrics, web)."]
    sources: Annotated[list[str], "Addresses the plan knows (group members, routers)."]
    audiences: Annotated[list[str], "Audiences the run adds (clients, monitoring, controller)."]


class FirewallPlan(TypedDict):
    """A host's rule templates (`sglfleet_plan.firewall`; `sglfleet_firewall_finish` ends them)."""

    problems: Annotated[list[str], "Address problems; non-empty stops the firewall role."]
    rules: Annotated[list[RuleTemplate], "The host's rule templates."]
    monitoring: Annotated[list[str], "Addresses of the hosts that run Prometheus."]


class FirewallRule(_Rule):
    """One finished accept rule (an entry of `firewall_rules`)."""

    ports: Annotated[list[str], "Disjoint ports and ranges (nft refuses overlaps)."]
    sources_ipv4: Annotated[list[str], "IPv4 sources, merged."]
    sources_ipv6: Annotated[list[str], "IPv6 sources, merged."]


# role, role input -> (the key of the host's sglfleet_plan the playbooks pass, its type)
PLANNER_FED: dict[tuple[str, str], tuple[str, type]] = {
    ("sglang_server", "sglang_server_launch"): ("launch", LaunchRecord),
    ("sglang_router", "sglang_router_workers"): ("router_workers", RouterWorkers),
    ("monitoring", "monitoring_prometheus_targets"): ("monitoring_targets", MonitoringTargets),
}

# role, list input -> (the plan's key, the filter that finishes it on the host, an entry's type)
FILTER_FED: dict[tuple[str, str], tuple[str, str, type]] = {
    ("firewall", "firewall_rules"): ("firewall", "sglfleet_firewall_finish", FirewallRule),
}

_SCALARS: dict[Any, str] = {str: "str", int: "int", bool: "bool", float: "float"}


def _is_typeddict(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__annotations__")


def _option(kind: Any, description: str) -> dict[str, Any]:
    optional = False
    if typing.get_origin(kind) in (Union, types.UnionType):
        members = [m for m in typing.get_args(kind) if m is not type(None)]
        optional = len(members) < len(typing.get_args(kind))
        (kind,) = members
    option: dict[str, Any] = {}
    origin = typing.get_origin(kind)
    if kind in _SCALARS:
        option["type"] = _SCALARS[kind]
    elif origin is Literal:
        option["type"] = "str"
        option["choices"] = list(typing.get_args(kind))
    elif origin is list:
        (element,) = typing.get_args(kind)
        option["type"] = "list"
        if _is_typeddict(element):
            option["elements"] = "dict"
            option["options"] = spec_options(element)
        else:
            option["elements"] = _option(element, "")["type"]
    elif origin is dict or _is_typeddict(kind):
        option["type"] = "dict"
        if _is_typeddict(kind):
            option["options"] = spec_options(kind)
    else:
        raise TypeError(f"no argument_specs type for {kind!r}")
    if not optional:
        option["required"] = True
    option["description"] = description
    return option


def spec_options(record: type) -> dict[str, dict[str, Any]]:
    """A TypedDict -> the `options:` of an argument_specs entry (Ansible's types)."""
    hints = typing.get_type_hints(record, include_extras=True)
    options: dict[str, dict[str, Any]] = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is not Annotated:
            raise TypeError(f"{record.__name__}.{name} has no description (Annotated[T, '...'])")
        kind, description = typing.get_args(hint)[:2]
        options[name] = _option(kind, str(description))
    return options
