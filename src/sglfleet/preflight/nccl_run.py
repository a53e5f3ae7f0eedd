"""`sglfleet preflight --nccl`: run the all-reduce benchmark playbook, judge each result, report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from sglfleet.inventory import load_inventory
from sglfleet.preflight.nccl import Check, judge, render_table, table
from sglfleet.runner import run_playbook


def nccl_report(inventory: Path, *, limit: str | None, quiet: bool) -> dict[str, Any]:
    """Judge every nccl-*.json the playbook wrote; print tables unless quiet; return --json."""
    inv = load_inventory(inventory)
    with tempfile.TemporaryDirectory(prefix="sglfleet-nccl-") as out:
        result = run_playbook(
            "playbooks/nccl_preflight.yml",
            inventory,
            limit=limit,
            extravars={"sglfleet_preflight_out": out},
        )
        documents = {
            p.stem: json.loads(p.read_text()) for p in sorted(Path(out).glob("nccl-*.json"))
        }
    checks: list[Check] = []
    summaries: list[dict[str, Any]] = []
    for name, document in documents.items():
        found, summary = judge(document, inv.global_vars)
        checks.extend(found)
        summaries.append({"file": name, **summary})
        if not quiet:
            _print(name, document, found, summary)
    failed = sum(c.status == "fail" for c in checks)
    if result.rc != 0:
        failed += 1
        if not quiet:
            from sglfleet.ui.render import err_console

            err_console.print(
                f"Error: the NCCL preflight playbook failed (ansible exit code {result.rc})"
            )
            err_console.print(f"Hint: see the failures above; full log in {result.artifacts}")
    return {
        "results": summaries,
        "failures": [
            {"host": f.host, "task": f.task, "message": f.message} for f in result.state.failures
        ],
        "failed": failed,
    }


def _print(
    name: str, document: dict[str, Any], checks: list[Check], summary: dict[str, Any]
) -> None:
    from sglfleet.ui.render import console, print_table

    console.print(f"[bold]{name}[/] ({summary.get('scope')}, tool {summary.get('tool')})")
    rate = summary.get("line_rate_gbps")
    if not document.get("skipped"):
        console.print(render_table(table(document, rate if isinstance(rate, float) else None)))
    print_table(
        f"NCCL checks: {name}",
        ["host", "check", "status", "observed", "expected", "likely cause / fix"],
        [
            [c.host, c.check, c.status.upper(), c.observed, c.expected, c.cause or c.fix]
            for c in checks
        ],
    )
