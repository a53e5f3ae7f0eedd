"""`sglfleet preflight`: collect raw data with the preflight playbooks, judge it, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sglfleet.deploy import load_cluster
from sglfleet.inventory import load_inventory
from sglfleet.preflight.gpu import Check, evaluate, expected_for_host, summarize
from sglfleet.preflight.nccl_run import nccl_report
from sglfleet.runner import RunResult, run_playbook
from sglfleet.ui.render import LiveRun, console, print_table


def _run(playbook: str, inventory: Path, limit: str | None, quiet: bool) -> RunResult:
    if quiet:
        return run_playbook(playbook, inventory, limit=limit)

    with LiveRun() as live:
        return run_playbook(playbook, inventory, limit=limit, on_event=live)


def reported(result: RunResult, key: str) -> dict[str, dict[str, Any]]:
    """What a preflight playbook reported with set_stats under `key`: {name: document}."""
    raw = result.state.data.get(key)
    if not isinstance(raw, dict):
        return {}
    return {str(name): doc for name, doc in raw.items() if isinstance(doc, dict)}


def gpu_checks(inventory: Path, limit: str | None, quiet: bool) -> list[Check]:
    inv = load_inventory(inventory)
    result = _run("playbooks/gpu_preflight.yml", inventory, limit, quiet)
    raws = reported(result, "sglfleet_gpu_preflight")
    checks: list[Check] = []
    gpu_hosts = [h for h, host in inv.hosts.items() if "sglfleet_gpu_nodes" in host.groups]
    unreachable = {f.host for f in result.state.failures if f.unreachable}
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
                    fix=f"check SSH to {host} (ansible_host, key, sudo); log in {result.artifacts}",
                )
            )
            continue
        checks.extend(evaluate(raw, expected_for_host(inv, host)))
    return checks


def run_preflight(inventory: Path, *, nccl: bool, limit: str | None, as_json: bool) -> int:
    """Run the checks; print a table (or JSON); return the number of failed checks."""
    load_cluster(inventory)
    checks = gpu_checks(inventory, limit, quiet=as_json)
    document: dict[str, Any] = summarize(checks)
    failed = int(document["failed"])
    if nccl:
        nccl_document = nccl_report(inventory, limit=limit, quiet=as_json)
        document["nccl"] = nccl_document
        failed += int(nccl_document.get("failed", 0))
        document["failed"] = failed
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return failed

    rows = [
        [
            c.host,
            c.check,
            c.status.upper(),
            c.observed,
            c.expected,
            c.fix if c.status != "ok" else "",
        ]
        for c in checks
    ]
    print_table("GPU preflight", ["host", "check", "status", "observed", "expected", "fix"], rows)
    if failed:
        console.print(f"[bold red]Error: {failed} preflight check(s) failed[/]")
        console.print("[yellow]Hint: apply each failed check's fix, then re-run the preflight[/]")
    else:
        console.print("[green]All preflight checks passed (skips say why they were skipped)[/]")
    return failed
