"""`sglfleet preflight`: collect raw data with the preflight playbooks, judge it, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sglfleet import host_keys
from sglfleet.deploy import load_cluster
from sglfleet.inventory import load_inventory
from sglfleet.preflight.gpu import Check, evaluate, expected_for_host, summarize
from sglfleet.preflight.nccl_run import nccl_report
from sglfleet.runner import EventHandler, RunResult, run_playbook


def reported(result: RunResult, key: str) -> dict[str, dict[str, Any]]:
    """What a preflight playbook reported with set_stats under `key`: {name: document}."""
    raw = result.state.data.get(key)
    if not isinstance(raw, dict):
        return {}
    return {str(name): doc for name, doc in raw.items() if isinstance(doc, dict)}


def gpu_checks(
    inventory: Path, limit: str | None, on_event: EventHandler | None = None
) -> list[Check]:
    """Run the GPU preflight playbook and judge what each GPU node reported."""
    inv = load_inventory(inventory)
    result = run_playbook("playbooks/gpu_preflight.yml", inventory, limit=limit, on_event=on_event)
    raws = reported(result, "sglfleet_gpu_preflight")
    checks: list[Check] = []
    gpu_hosts = [h for h, host in inv.hosts.items() if "sglfleet_gpu_nodes" in host.groups]
    unreachable = {f.host: f.message for f in result.state.failures if f.unreachable}
    if result.failed_before_any_task:
        said = result.early_output.splitlines()[-1:] or ["it printed nothing"]
        return [
            Check(
                host="controller",
                check="ansible",
                status="fail",
                observed=f"Ansible did not run (exit code {result.rc}): {said[0]}",
                expected="the GPU preflight playbook runs",
                fix=f"no host was contacted; fix what Ansible says, log in {result.artifacts}",
            )
        ]
    for host in gpu_hosts:
        if limit and host not in result.state.hosts and host not in raws:
            continue
        raw = raws.get(host)
        if raw is None:
            why = "unreachable" if host in unreachable else "no data collected"
            checks.append(
                Check(
                    host=host,
                    check="reachable",
                    status="fail",
                    observed=why,
                    expected="preflight data",
                    fix=(
                        host_keys.unreachable_fix(
                            host, unreachable.get(host, ""), result.known_hosts
                        )
                        + f"; log in {result.artifacts}"
                    ),
                )
            )
            continue
        checks.extend(evaluate(raw, expected_for_host(inv, host)))
    return checks


def run_preflight(
    inventory: Path, *, nccl: bool, limit: str | None, on_event: EventHandler | None = None
) -> dict[str, Any]:
    """Run the checks and judge them: the `--json` document (`failed` counts failed checks).

    `ui.preflight.render_preflight` shows it on a terminal; `on_event` follows the playbooks live.
    """
    load_cluster(inventory)
    document: dict[str, Any] = summarize(gpu_checks(inventory, limit, on_event))
    if nccl:
        nccl_document = nccl_report(inventory, limit=limit, on_event=on_event)
        document["nccl"] = nccl_document
        document["failed"] = int(document["failed"]) + int(nccl_document.get("failed", 0))
    return document
