"""`sglfleet status`: unit state of every member and readiness of every group's rank 0."""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from sglfleet.errors import SglfleetError
from sglfleet.inventory import load_inventory
from sglfleet.runner import run_playbook
from sglfleet.topology import plan


def probe_ready(url: str, timeout: float = 5.0) -> bool:
    """SGLang answers /health_generate 200 only after a real generation succeeds."""
    try:
        return httpx.get(f"{url}/health_generate", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def unit_states(inventory: Path) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="sglfleet-status-") as out:
        result = run_playbook(
            "playbooks/status.yml", inventory, extravars={"sglfleet_status_out": out}
        )
        states: dict[str, dict[str, Any]] = {}
        for path in Path(out).glob("*.json"):
            document = json.loads(path.read_text())
            states[document["host"]] = document["units"]
    if result.rc != 0 and not states:
        raise SglfleetError(
            f"could not read unit states (ansible exit code {result.rc})",
            f"check that the hosts are reachable; log in {result.artifacts}",
        )
    return states


def collect_status(inventory: Path) -> dict[str, Any]:
    cluster = plan(load_inventory(inventory))
    states = unit_states(inventory)
    urls = [g.api_url for g in cluster.serving_groups]
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(urls)))) as pool:
        ready = dict(zip(urls, pool.map(probe_ready, urls), strict=True))
    groups = []
    for group in cluster.serving_groups:
        nodes = []
        for node in group.nodes:
            unit = states.get(node.host, {}).get(node.unit, {})
            nodes.append(
                {
                    "host": node.host,
                    "node_rank": node.node_rank,
                    "unit": node.unit,
                    "active": unit.get("ActiveState") == "active",
                    "state": unit.get("ActiveState", "unknown"),
                    "restarts": int(unit.get("NRestarts", 0) or 0),
                    "since": unit.get("ActiveEnterTimestamp", ""),
                }
            )
        groups.append(
            {
                "name": group.name,
                "model": group.model,
                "ready": ready[group.api_url],
                "url": group.api_url,
                "nodes": nodes,
            }
        )
    return {"endpoint": cluster.endpoint, "groups": groups}


def render_status(document: dict[str, Any]) -> None:
    from sglfleet.ui.render import console, print_table

    console.print(f"Endpoint: {document['endpoint']}")
    rows = []
    for group in document["groups"]:
        for node in group["nodes"]:
            rows.append(
                [
                    group["name"],
                    "ready" if group["ready"] else "NOT READY",
                    node["host"],
                    node["node_rank"],
                    node["unit"],
                    node["state"],
                    node["restarts"],
                ]
            )
    print_table(
        "Serving groups", ["group", "ready", "host", "rank", "unit", "state", "restarts"], rows
    )
