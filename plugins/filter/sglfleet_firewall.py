"""Ansible filters for the firewall: a host's allow-list from its planned templates (plain data)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from ansible.errors import AnsibleFilterError  # noqa: E402

from sglfleet.security import (  # noqa: E402
    address_in_networks,
    finish_rules,
    merge_networks,
    merge_ports,
)


def sglfleet_firewall_finish(
    templates: dict[str, Any],
    host: str,
    client_networks: list[str] | None = None,
    monitoring_networks: list[str] | None = None,
    controller_addresses: list[str] | None = None,
    node_metrics_ports: list[int] | None = None,
    web_ports: list[int] | None = None,
    ephemeral_range: str = "32768-60999",
) -> list[dict[str, Any]]:
    """Accept rules of `host` from its planned templates (`sglfleet_plan.firewall`) and the run's
    own inputs: [{name, comment, protocol, ports, sources_ipv4, sources_ipv6}]. Plain data only."""
    problems = list((templates or {}).get("problems") or [])
    if problems:
        raise AnsibleFilterError("; ".join(str(p) for p in problems))
    low, _, high = str(ephemeral_range).replace("\t", " ").replace(" ", "-").partition("-")
    try:
        return finish_rules(
            templates,
            client_networks=[str(n) for n in client_networks or []],
            monitoring_networks=[str(n) for n in monitoring_networks or []],
            controller_addresses=[str(a) for a in controller_addresses or [] if a],
            node_metrics_ports=[int(p) for p in node_metrics_ports or []],
            web_ports=[int(p) for p in web_ports or []],
            ephemeral_range=(int(low), int(high.strip("-") or low)),
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"{host}: {exc}") from None


def sglfleet_address_in_networks(address: str, networks: list[str]) -> bool:
    """Whether `address` lies in any of `networks` (CIDRs or single addresses)."""
    return address_in_networks(str(address), [str(n) for n in networks])


def sglfleet_merge_ports(ports: list[Any]) -> list[str]:
    """Port expressions merged into disjoint ones (nft refuses overlapping set elements)."""
    return merge_ports(ports)


def sglfleet_merge_networks(sources: list[str]) -> dict[str, list[str]]:
    """Sources collapsed per family: {ipv4: [...], ipv6: [...]}."""
    ipv4, ipv6 = merge_networks(sources)
    return {"ipv4": ipv4, "ipv6": ipv6}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_firewall_finish": sglfleet_firewall_finish,
            "sglfleet_address_in_networks": sglfleet_address_in_networks,
            "sglfleet_merge_ports": sglfleet_merge_ports,
            "sglfleet_merge_networks": sglfleet_merge_networks,
        }
