"""Pure security planning: SGLang's pinned internal ports and each host's firewall allow-list.

SGLang 0.5.23 opens, besides its HTTP port, sockets that deserialize pickles without
authentication (ZMQ, torch.distributed's TCPStore). On a multi-node group they must be reachable
by the group's members and by nobody else. Most of them are random unless pinned, so the plan
pins them with `pinned_ports` and the firewall opens exactly the same numbers: both come from
this module, so the launch environment and the rules cannot drift apart.

The port block itself is SGLang's: `sglfleet_sglang.ports`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sglfleet.cluster import Replica, replicas
from sglfleet.contract import FirewallPlan, FirewallRule, Protocol, RuleTemplate
from sglfleet.errors import Problem
from sglfleet.models import Host, Inventory
from sglfleet_sglang.ports import (
    BLOCK_SIZE,
    DIST_INIT_ZMQ_OFFSETS,
    DP_ATTENTION_HANDSHAKE_OFFSET,
    NCCL_PORT_OFFSET,
    SGLANG_PORT_OFFSET,
    SGLANG_PORT_SPAN,
    TCP_STORE_PORT_OFFSET,
)

# Linux's default net.ipv4.ip_local_port_range; a pinned port in it can be taken by any bind(0).
LINUX_EPHEMERAL_RANGE = (32768, 60999)
MONITORING_GROUP = "sglfleet_monitoring"
ROUTER_GROUP = "sglfleet_routers"


@dataclass(frozen=True)
class PinnedPorts:
    """Every internal port one serving group uses, fixed so a firewall can name them."""

    dist_init: int
    nccl: int
    sglang_port: int
    tcp_store: int

    @property
    def sglang_port_range(self) -> tuple[int, int]:
        return (self.sglang_port, self.sglang_port + SGLANG_PORT_SPAN - 1)

    @property
    def block(self) -> tuple[int, int]:
        return (self.dist_init, self.dist_init + BLOCK_SIZE - 1)

    def env(self) -> dict[str, str]:
        """Environment the group's units need (merged into the plan's node env)."""
        return {"SGLANG_PORT": str(self.sglang_port), "SGLANG_TCP_STORE_PORT": str(self.tcp_store)}

    def flags(self) -> list[str]:
        """Server flags the group's launch needs (besides --dist-init-addr, already planned)."""
        return ["--nccl-port", str(self.nccl)]

    def member_ports(self) -> list[str]:
        """nftables port expressions members may reach on each other."""
        low, high = self.sglang_port_range
        zmq_low, zmq_high = (self.dist_init + o for o in (1, len(DIST_INIT_ZMQ_OFFSETS)))
        return [
            str(self.dist_init),
            f"{zmq_low}-{zmq_high}",
            str(self.dist_init + DP_ATTENTION_HANDSHAKE_OFFSET),
            str(self.nccl),
            f"{low}-{high}",
            str(self.tcp_store),
        ]


def pinned_ports(dist_init_port: int, nccl_port: int | None = None) -> PinnedPorts:
    """The group's port block, from its dist-init port (and an explicit --nccl-port, if set)."""
    return PinnedPorts(
        dist_init=dist_init_port,
        nccl=nccl_port or dist_init_port + NCCL_PORT_OFFSET,
        sglang_port=dist_init_port + SGLANG_PORT_OFFSET,
        tcp_store=dist_init_port + TCP_STORE_PORT_OFFSET,
    )


def host_addresses(host: Host) -> list[str]:
    """Every address a host may use as a source: ansible_host, service and fabric address."""
    candidates = [
        host.ansible_host,
        host.vars.get("sglfleet_service_address"),
        host.fabric_address,
    ]
    out: list[str] = []
    for candidate in candidates:
        if candidate and str(candidate) not in out:
            out.append(str(candidate))
    return out


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def address_problems(inv: Inventory, hosts: Iterable[str]) -> list[Problem]:
    """Firewall sources must be literal addresses: nft cannot match a host name reliably."""
    problems: list[Problem] = []
    for name in hosts:
        host = inv.hosts.get(name)
        if host is None:
            continue
        for address in host_addresses(host):
            if not _is_network(address):
                problems.append(
                    Problem(
                        f"address `{address}` is a name, not an IP address; the firewall"
                        " matches packets by source address",
                        "set ansible_host (or sglfleet_service_address) and"
                        " sglfleet_fabric_address to IP addresses",
                        host=name,
                        variable="ansible_host",
                    )
                )
    return problems


def port_problems(inv: Inventory) -> list[Problem]:
    """Pinned port blocks that leave the valid range, enter the ephemeral range or hit a port."""
    problems: list[Problem] = []
    router_ports: dict[str, list[int]] = {}
    if inv.router is not None:
        router_ports[inv.router.host] = [inv.router.port, inv.router.metrics_port]
    for replica in replicas(inv):
        spec = replica.spec
        if len(replica.hosts) < 2:
            continue
        var = f"sglfleet_serving_groups[{spec.name}].dist_init_port"
        ports = pinned_ports(spec.dist_init_port, spec.nccl_port)
        low, high = ports.block
        if high > 65535:
            problems.append(
                Problem(
                    f"group {replica.name}'s internal ports {low}-{high} pass 65535",
                    f"set dist_init_port at most {65535 - BLOCK_SIZE + 1}",
                    variable=var,
                )
            )
        eph_low, eph_high = LINUX_EPHEMERAL_RANGE
        if low <= eph_high and high >= eph_low:
            problems.append(
                Problem(
                    f"group {replica.name}'s internal ports {low}-{high} overlap the kernel's"
                    f" ephemeral range {eph_low}-{eph_high}, where any bind(0) may take them",
                    f"set dist_init_port so that dist_init_port..+{BLOCK_SIZE - 1} stays below"
                    f" {eph_low} (the default 20000 does)",
                    variable=var,
                )
            )
        taken = [spec.port]
        if spec.disaggregation is not None:
            taken.append(spec.disaggregation.bootstrap_port)
        for host in replica.hosts:
            clashes = [p for p in [*taken, *router_ports.get(host, [])] if low <= p <= high]
            for port in clashes:
                problems.append(
                    Problem(
                        f"port {port} lies inside group {replica.name}'s internal ports"
                        f" {low}-{high}",
                        "move dist_init_port (or the other port) so the ranges do not meet",
                        host=host,
                        variable=var,
                    )
                )
    return problems


@dataclass(frozen=True)
class Rule:
    """Accept new connections to these ports from these sources."""

    name: str
    comment: str
    protocol: Protocol
    ports: tuple[str, ...]
    sources: tuple[str, ...]

    def as_dict(self) -> FirewallRule:
        ipv4, ipv6 = merge_networks(self.sources)
        return {
            "name": self.name,
            "comment": self.comment,
            "protocol": self.protocol,
            "ports": merge_ports(self.ports),
            "sources_ipv4": ipv4,
            "sources_ipv6": ipv6,
        }


def merge_ports(ports: Iterable[str | int]) -> list[str]:
    """Port expressions (`80`, `20001-20006`) merged into disjoint ones: nft rejects overlaps."""
    spans: list[tuple[int, int]] = []
    for item in ports:
        text = str(item).strip()
        low, _, high = text.partition("-")
        first, last = int(low), int(high or low)
        if not (0 < first <= last <= 65535):
            raise ValueError(f"`{text}` is not a port or port range within 1-65535")
        spans.append((first, last))
    merged: list[list[int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [str(a) if a == b else f"{a}-{b}" for a, b in merged]


def merge_networks(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """Addresses and networks collapsed per family (IPv4, IPv6): nft rejects overlapping ones."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for source in sources:
        network = ipaddress.ip_network(str(source).strip(), strict=False)
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(network)

    def render(nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> list[str]:
        out = []
        for net in nets:
            single = net.prefixlen == net.max_prefixlen
            out.append(str(net.network_address) if single else str(net))
        return out

    return render(ipaddress.collapse_addresses(v4)), render(ipaddress.collapse_addresses(v6))


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        if value and value not in out:
            out.append(value)
    return tuple(out)


def _addresses_of(inv: Inventory, names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name in inv.hosts:
            out.extend(host_addresses(inv.hosts[name]))
    return out


def _check_networks(values: Iterable[str], variable: str) -> list[str]:
    out = []
    for value in values:
        text = str(value)
        if not _is_network(text):
            raise ValueError(f"{variable}: `{text}` is not an IP address or network (CIDR)")
        out.append(text)
    return out


# Audiences a rule template names; the host-side finishing step fills them in (see finish_rules).
CLIENTS = "clients"
MONITORING = "monitoring"
CONTROLLER = "controller"
# Port tokens filled in on the host: the kernel's ephemeral range and the role's exporter/UI ports.
EPHEMERAL = "ephemeral"
NODE_METRICS = "node_metrics"
WEB = "web"


def _template(
    name: str, comment: str, ports: Iterable[str], sources: Iterable[str], *audiences: str
) -> RuleTemplate:
    return {
        "name": name,
        "comment": comment,
        "protocol": "tcp",
        "ports": list(ports),
        "sources": list(_unique(sources)),
        "audiences": list(audiences),
    }


def rule_templates(
    inv: Inventory, host: str, all_replicas: Sequence[Replica] | None = None
) -> FirewallPlan:
    """What the inventory alone says about `host`'s accept rules, computed once per run.

    The controller plans this in its main process; the host adds what only the run knows
    (`finish_rules`): the client and monitoring networks, the controller's address, the kernel's
    ephemeral range and the exporter/UI ports. Returns {rules: [...], monitoring: [addresses]}.
    """
    monitoring = [
        a for h in inv.hosts.values() if MONITORING_GROUP in h.groups for a in host_addresses(h)
    ]
    router_hosts = [name for name, h in inv.hosts.items() if ROUTER_GROUP in h.groups]
    if inv.router is not None and inv.router.host not in router_hosts:
        router_hosts.append(inv.router.host)
    if not any(MONITORING_GROUP in h.groups for h in inv.hosts.values()):
        # playbooks/monitoring.yml runs Prometheus on the first router host then.
        monitoring += _addresses_of(inv, router_hosts[:1])
    all_replicas = replicas(inv) if all_replicas is None else all_replicas
    modes = {r.name: r.spec.mode for r in all_replicas}
    routers = _addresses_of(inv, router_hosts)
    rules: list[RuleTemplate] = []
    for replica in all_replicas:
        if host not in replica.hosts:
            continue
        spec = replica.spec
        rules.append(
            _template(
                f"{replica.name}-api",
                f"SGLang API of group {replica.name}: router, clients, monitoring",
                (str(spec.port),),
                routers,
                CLIENTS,
                MONITORING,
                CONTROLLER,
            )
        )
        members = _addresses_of(inv, [h for h in replica.hosts if h != host])
        if len(replica.hosts) > 1:
            ports = pinned_ports(spec.dist_init_port, spec.nccl_port)
            rules.append(
                _template(
                    f"{replica.name}-internal",
                    f"dist-init, ZMQ, NCCL, SGLANG_PORT, TCPStore of {replica.name}: members only",
                    ports.member_ports(),
                    members,
                )
            )
            rules.append(
                _template(
                    f"{replica.name}-nccl-ephemeral",
                    f"NCCL bootstrap and data sockets (ephemeral) of {replica.name}: members only",
                    (EPHEMERAL,),
                    members,
                )
            )
        if spec.mode != "regular":
            partner_mode = "decode" if spec.mode == "prefill" else "prefill"
            partners = [h for r in all_replicas if modes[r.name] == partner_mode for h in r.hosts]
            partner_addresses = _addresses_of(inv, partners)
            if spec.mode == "prefill" and spec.disaggregation is not None:
                rules.append(
                    _template(
                        f"{replica.name}-bootstrap",
                        f"PD bootstrap of prefill group {replica.name}: decode groups, router",
                        (str(spec.disaggregation.bootstrap_port),),
                        [*partner_addresses, *routers],
                    )
                )
            rules.append(
                _template(
                    f"{replica.name}-kv-transfer",
                    f"KV-cache transfer handshakes of {replica.name}: its {partner_mode} groups",
                    (EPHEMERAL,),
                    partner_addresses,
                )
            )
    rules.append(
        _template(
            "node-metrics",
            "node exporters (node, DCGM): monitoring",
            (NODE_METRICS,),
            (),
            MONITORING,
            CONTROLLER,
        )
    )
    rules.append(
        _template(
            "web-ui",
            "web UIs on this host (Prometheus, Grafana, Open WebUI): client networks",
            (WEB,),
            (),
            CLIENTS,
            CONTROLLER,
        )
    )
    if inv.router is not None and host == inv.router.host:
        rules.append(
            _template(
                "router",
                "the cluster's endpoint: client networks",
                (str(inv.router.port),),
                (),
                CLIENTS,
                CONTROLLER,
            )
        )
        rules.append(
            _template(
                "router-metrics",
                "router Prometheus metrics: monitoring",
                (str(inv.router.metrics_port),),
                (),
                MONITORING,
                CONTROLLER,
            )
        )
    return {"problems": [], "rules": rules, "monitoring": list(_unique(monitoring))}


def finish_rules(
    templates: Mapping[str, Any],
    *,
    client_networks: Iterable[str] = (),
    monitoring_networks: Iterable[str] = (),
    controller_addresses: Iterable[str] = (),
    node_metrics_ports: Iterable[int] = (),
    web_ports: Iterable[int] = (),
    ephemeral_range: tuple[int, int] = LINUX_EPHEMERAL_RANGE,
) -> list[FirewallRule]:
    """The host's accept rules from its planned templates and what only the run knows."""
    audiences = {
        CLIENTS: _check_networks(client_networks, "firewall_client_networks"),
        MONITORING: _check_networks(monitoring_networks, "firewall_monitoring_networks")
        + list(templates.get("monitoring", ())),
        CONTROLLER: _check_networks(controller_addresses, "controller address"),
    }
    port_tokens = {
        EPHEMERAL: [f"{ephemeral_range[0]}-{ephemeral_range[1]}"],
        NODE_METRICS: [str(p) for p in node_metrics_ports],
        WEB: [str(p) for p in web_ports],
    }
    rules: list[Rule] = []
    for template in templates.get("rules", ()):
        ports = [p for token in template["ports"] for p in port_tokens.get(str(token), [token])]
        sources = [*template["sources"]]
        for audience in template["audiences"]:
            sources += audiences[audience]
        if ports:
            rules.append(
                Rule(
                    template["name"],
                    template["comment"],
                    template["protocol"],
                    tuple(str(p) for p in ports),
                    _unique(sources),
                )
            )
    return [rule.as_dict() for rule in rules if rule.sources]


def firewall_rules(inv: Inventory, host: str, **run_inputs: Any) -> list[FirewallRule]:
    """The accept rules of one host: who may open which port. Everything else is dropped.

    - API port of a serving node: router hosts, client networks, monitoring, the controller.
    - Router port: client networks and the controller; router metrics: monitoring, controller.
    - Web UIs this host runs (`web_ports`: Prometheus, Grafana, Open WebUI): client networks and
      the controller, like the router's endpoint.
    - Node metrics ports (exporters): monitoring and the controller. Monitoring is the
      `sglfleet_monitoring` hosts plus `monitoring_networks`, else the first router host (where
      playbooks/monitoring.yml then runs Prometheus).
    - A multi-node group's internal ports and the ephemeral range (NCCL): its members only;
      a prefill group's bootstrap port and ephemeral range (KV transfer): the paired groups too.

    `run_inputs` are `finish_rules`' keywords (networks, controller, ports, ephemeral range).
    """
    return finish_rules(rule_templates(inv, host), **run_inputs)


def address_in_networks(address: str, networks: Iterable[str]) -> bool:
    """Whether an address lies in any of the networks (for the SSH lock-out guard)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(str(network), strict=False):
                return True
        except ValueError:
            continue
    return False
