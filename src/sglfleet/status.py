"""`sglfleet status`: unit state of every member and readiness of every group's rank 0."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from sglfleet import host_keys
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


READY_LINE = "The server is fired up and ready to roll"


def warmup_seconds(probe: str, now: float | None = None) -> dict[str, Any]:
    """playbooks/status.yml's warm-up probe -> {"seconds": start to first ready, "warming": bool}.

    The probe prints `start @EPOCH` (systemctl's ExecMainStartTimestamp of the running engine) and,
    once rank 0 logged SGLang's ready line, that journal line in short-unix form (`EPOCH.USEC ...`).
    """
    start: float | None = None
    ready: float | None = None
    for line in probe.splitlines():
        if line.startswith("start @"):
            try:
                start = float(line.removeprefix("start @").strip())
            except ValueError:
                start = None
        elif READY_LINE in line:
            try:
                ready = float(line.split(" ", 1)[0])
            except ValueError:
                ready = None
    if start is None:
        return {"seconds": None, "warming": False}
    if ready is None:
        elapsed = (now if now is not None else time.time()) - start
        return {"seconds": round(max(0.0, elapsed), 1), "warming": True}
    return {"seconds": round(max(0.0, ready - start), 1), "warming": False}


def reported_status(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """playbooks/status.yml's `sglfleet_status` (set_stats) -> {host: {units, warmup}}."""
    raw = data.get("sglfleet_status")
    if not isinstance(raw, dict):
        return {}
    return {
        str(host): {
            "units": dict(entry.get("units") or {}),
            "warmup": dict(entry.get("warmup") or {}),
        }
        for host, entry in raw.items()
        if isinstance(entry, dict)
    }


def _read_status(
    inventory: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]], list[dict[str, str]]]:
    """Unit states and warm-up probes per host, from playbooks/status.yml's reported data; and
    the hosts SSH could not reach, each with what ssh said and the fix."""
    result = run_playbook("playbooks/status.yml", inventory)
    reported = reported_status(result.state.data)
    states = {host: entry["units"] for host, entry in reported.items()}
    probes = {host: entry["warmup"] for host, entry in reported.items()}
    unreachable = [
        {
            "host": f.host,
            "message": f.message[:500],
            "fix": host_keys.unreachable_fix(f.host, f.message, result.known_hosts),
        }
        for f in result.state.failures
        if f.unreachable
    ]
    if result.rc != 0 and not states:
        raise SglfleetError(
            f"could not read unit states (ansible exit code {result.rc})",
            "; ".join(u["fix"] for u in unreachable)
            or f"check that the hosts are reachable; log in {result.artifacts}",
        )
    return states, probes, unreachable


def collect_status(inventory: Path) -> dict[str, Any]:
    cluster = plan(load_inventory(inventory))
    states, probes, unreachable = _read_status(inventory)
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
        rank0 = next(node for node in group.nodes if node.node_rank == 0)
        warmup = warmup_seconds(probes.get(rank0.host, {}).get(rank0.unit, ""))
        if warmup["warming"] and ready[group.api_url]:  # ready, but its line left the journal
            warmup = {"seconds": None, "warming": False}
        groups.append(
            {
                "name": group.name,
                "model": group.model,
                "ready": ready[group.api_url],
                # Unit start to SGLang's first "ready" (weights, CUDA graphs, JIT kernels).
                "warmup": warmup,
                "url": group.api_url,
                "nodes": nodes,
            }
        )
    return {"endpoint": cluster.endpoint, "groups": groups, "unreachable": unreachable}
