"""`sglfleet preflight` on a terminal: what `preflight.run.run_preflight` returns, as tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sglfleet.ui.render import console, print_table


def bandwidth_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """Bus bandwidth by message size (rows of `preflight.nccl.table`, as dataclasses or dicts)."""
    lines = [f"{'size':>6} {'time_us':>11} {'algbw GB/s':>11} {'busbw GB/s':>11} {'of line':>8}"]
    for row in rows:
        fraction = row.get("fraction_of_line_rate")
        shown = f"{fraction:.0%}" if fraction is not None else "-"
        lines.append(
            f"{row['size']:>6} {float(row['time_us']):>11.1f} {float(row['algbw_gbps']):>11.2f}"
            f" {float(row['busbw_gbps']):>11.2f} {shown:>8}"
        )
    return "\n".join(lines)


def _cause_and_fix(check: Mapping[str, Any]) -> str:
    fix = f"fix: {check['fix']}" if check.get("fix") else ""
    return "; ".join(part for part in (str(check.get("cause") or ""), fix) if part)


def print_nccl_checks(title: str, checks: Iterable[Mapping[str, Any]]) -> None:
    print_table(
        title,
        ["host", "check", "status", "observed", "expected", "likely cause / fix"],
        [
            [
                c["host"],
                c["check"],
                str(c["status"]).upper(),
                c["observed"],
                c.get("expected", ""),
                _cause_and_fix(c),
            ]
            for c in checks
        ],
    )


def render_nccl(document: Mapping[str, Any]) -> None:
    """Each measured result (its bandwidth table and checks), then the playbook's own failures."""
    for result in document.get("results") or []:
        name = result.get("file")
        console.print(f"[bold]{name}[/] ({result.get('scope')}, tool {result.get('tool')})")
        if result.get("table"):
            console.print(bandwidth_table(result["table"]))
        print_nccl_checks(f"NCCL checks: {name}", result.get("checks") or [])
    if document.get("playbook_checks"):
        print_nccl_checks("NCCL preflight playbook", document["playbook_checks"])


def render_gpu(document: Mapping[str, Any]) -> None:
    rows = [
        [
            node["host"],
            check["check"],
            str(check["status"]).upper(),
            check["observed"],
            check["expected"],
            check["fix"] if check["status"] != "ok" else "",
        ]
        for node in document.get("nodes") or []
        for check in node["checks"]
    ]
    print_table("GPU preflight", ["host", "check", "status", "observed", "expected", "fix"], rows)


def render_preflight(document: Mapping[str, Any]) -> None:
    """The GPU checks, the NCCL results when measured, and the verdict line."""
    render_gpu(document)
    if "nccl" in document:
        render_nccl(document["nccl"])
    failed = int(document.get("failed", 0))
    if failed:
        console.print(f"[bold red]Error: {failed} preflight check(s) failed[/]")
        console.print("[yellow]Hint: apply each failed check's fix, then re-run the preflight[/]")
    else:
        console.print("[green]All preflight checks passed (skips say why they were skipped)[/]")
