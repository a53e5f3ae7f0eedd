"""`sglfleet status` on a terminal: the document `status.collect_status` returns, as a table."""

from __future__ import annotations

from typing import Any

from sglfleet.ui.render import console, err_console, print_table


def format_warmup(warmup: dict[str, Any] | None) -> str:
    if not warmup or warmup.get("seconds") is None:
        return "-"
    seconds = int(warmup["seconds"])
    text = f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
    return f"warming, {text} so far" if warmup.get("warming") else text


def render_status(document: dict[str, Any]) -> None:
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
                    format_warmup(group.get("warmup")) if node["node_rank"] == 0 else "",
                ]
            )
    print_table(
        "Serving groups",
        ["group", "ready", "host", "rank", "unit", "state", "restarts", "warm-up"],
        rows,
    )
    for host in document.get("unreachable") or []:
        err_console.print(
            f"Error: {host['host']} did not answer over SSH: {host['message']}", markup=False
        )
        err_console.print(f"Hint: {host['fix']}", markup=False)
