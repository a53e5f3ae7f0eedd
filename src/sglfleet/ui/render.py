"""Render run state, plans and errors with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sglfleet import host_keys
from sglfleet.errors import SglfleetError
from sglfleet.events import Event, HostResult, RunState
from sglfleet.models import ClusterPlan
from sglfleet.runner import RunResult

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def print_error(exc: SglfleetError) -> None:
    err_console.print(Text(f"Error: {exc.message}", style="bold red"))
    for problem in exc.problems:
        err_console.print(Text(f"Error: {problem.render()}", style="red"))
        err_console.print(Text(f"Hint: {problem.hint}", style="yellow"))
    if exc.hint:
        err_console.print(Text(f"Hint: {exc.hint}", style="yellow"))


def hosts_table(state: RunState) -> Table:
    table = Table(title=f"{state.play} | {state.task}", title_justify="left", expand=False)
    for column in ("host", "ok", "changed", "failed", "unreachable", "skipped", "last task"):
        table.add_column(column)
    for host, counts in sorted(state.hosts.items()):
        style = "red" if counts.failed or counts.unreachable else ""
        table.add_row(
            host,
            str(counts.ok),
            str(counts.changed),
            str(counts.failed),
            str(counts.unreachable),
            str(counts.skipped),
            counts.last_task[:60],
            style=style,
        )
    return table


class LiveRun:
    """Live per-host progress while a playbook runs; skips with a reason are echoed once."""

    def __init__(self, verbose_skips: bool = True) -> None:
        self._live = Live(console=console, refresh_per_second=4, transient=False)
        self._verbose_skips = verbose_skips

    def __enter__(self) -> LiveRun:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def __call__(self, event: Event, state: RunState) -> None:
        if isinstance(event, HostResult) and event.status == "failed" and not event.ignored:
            self._live.console.print(
                Text(f"FAILED {event.host}: {event.task}: {event.message[:300]}", style="red")
            )
        self._live.update(Group(hosts_table(state)))


def print_recap(state: RunState) -> None:
    table = Table(title="Recap")
    for column in ("host", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(column)
    for host, counts in sorted(state.recap.items()):
        table.add_row(
            host,
            *(str(counts.get(k, 0)) for k in ("ok", "changed", "failed", "unreachable", "skipped")),
        )
    console.print(table)
    if state.failures:
        err_console.print(Text("Failed:", style="bold red"))
        for failure in state.failures:
            what = "unreachable" if failure.unreachable else "failed"
            err_console.print(
                Text(f"  {failure.host} | {failure.task} | {what}: {failure.message[:500]}")
            )


def print_plan(plan: ClusterPlan) -> None:
    for group in plan.serving_groups:
        mem_style = "green" if group.memory.fits else "bold red"
        console.print(
            Text(f"Serving group {group.name}", style="bold"),
            Text(f" model={group.model} mode={group.mode} nnodes={group.nnodes} tp={group.tp}"),
        )
        if group.dist_init_addr:
            console.print(f"  dist-init: {group.dist_init_addr}")
        console.print(Text(f"  memory: {group.memory.message}", style=mem_style))
        console.print(
            Text(
                "  architecture: "
                + (
                    f"from {group.architecture_source}"
                    if group.architecture_source
                    else "unknown model, split not checked (no config.json readable here and "
                    "not in sglfleet's table)"
                )
            )
        )
        if group.memory.hint:
            console.print(Text(f"  Hint: {group.memory.hint}", style="yellow"))
        table = Table(show_header=True, expand=False)
        for column in ("host", "rank", "unit", "launch"):
            table.add_column(column, overflow="fold")
        for node in group.nodes:
            table.add_row(node.host, str(node.node_rank), node.unit, " ".join(node.server_args))
        console.print(table)
    if plan.endpoint:
        console.print(f"Endpoint: {plan.endpoint}")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)


def print_run_failure(playbook: str, result: RunResult) -> None:
    """Why a run failed: the failures shown above, or, when no task ran, what Ansible said."""
    if result.failed_before_any_task:
        said = result.early_output or "(it printed nothing)"
        err_console.print(
            f"Error: {playbook} stopped before its first task (ansible exit code {result.rc}):",
            markup=False,
        )
        for line in said.splitlines():
            err_console.print(f"  {line}", markup=False, highlight=False)
        err_console.print(
            "Hint: fix what Ansible says above (a syntax error, a missing collection, an "
            f"unreadable inventory or key), then re-run; full log in {result.artifacts}",
            markup=False,
        )
        return
    err_console.print(f"Error: {playbook} failed (ansible exit code {result.rc})")
    for failure in result.state.failures:
        if failure.unreachable and host_keys.key_changed(failure.message):
            fix = host_keys.unreachable_fix(failure.host, failure.message, result.known_hosts)
            err_console.print(f"Hint: {fix}", markup=False)
    err_console.print(f"Hint: fix the failures above, then re-run; full log in {result.artifacts}")
