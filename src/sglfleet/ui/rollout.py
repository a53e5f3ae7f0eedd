"""`sglfleet rollout` on a terminal: a rollout record, one row per group, then its failed steps."""

from __future__ import annotations

from typing import Any

from sglfleet.ui.render import console, print_table


def print_rollout(record: dict[str, Any]) -> None:
    rows = []
    for group in record["groups"]:
        rows.append(
            [
                group["name"],
                ",".join(group["hosts"]),
                group["result"],
                "-"
                if group["restart_to_ready_s"] is None
                else f"{group['restart_to_ready_s']:.1f}",
                "-" if group["seconds"] is None else f"{group['seconds']:.1f}",
                (group["error"] or "")[:120],
            ]
        )
    print_table(
        f"Rollout {record['id']}: {record['result']} in {record.get('seconds') or 0:.1f}s",
        ["group", "hosts", "result", "restart-to-ready s", "group s", "error"],
        rows,
    )
    for group in record["groups"]:
        for step in group["steps"]:
            if not step["ok"]:
                console.print(f"  {group['name']}: {step['name']} failed: {step['detail'][:300]}")
    if record.get("unreachable"):
        console.print(f"  unreachable: {', '.join(record['unreachable'])}")
    console.print(f"Record: {record['path']}")
