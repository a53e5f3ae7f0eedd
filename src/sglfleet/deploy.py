"""Converge a cluster: validate the inventory, then run site.yml with live progress."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from sglfleet import checks
from sglfleet.errors import SglfleetError
from sglfleet.events import Event, RunState
from sglfleet.inventory import load_inventory
from sglfleet.models import ClusterPlan, Inventory
from sglfleet.runner import RunResult, forks_for, run_playbook
from sglfleet.topology import plan
from sglfleet.ui.render import LiveRun, err_console, print_recap


class Cluster(NamedTuple):
    """A command's inventory and its plan, loaded, checked and planned once."""

    inventory: Inventory
    plan: ClusterPlan


def load_cluster(inventory: Path, *, require_fit: bool = True) -> Cluster:
    """Load, check and plan; raises InventoryError (exit 2) before any host is contacted.

    `require_fit`: a group whose model does not fit its GPUs is an error too (`sglfleet plan`
    leaves it out to show the plan first, then calls `checks.require_fit`).
    """
    loaded = load_inventory(inventory)
    cluster = plan(loaded)
    if require_fit:
        checks.require_fit(loaded)
    return Cluster(loaded, cluster)


def parse_extra_vars(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` run controls; values are YAML scalars (true, 3, full)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SglfleetError(
                f"--extra-vars {item!r} is not KEY=VALUE",
                "write e.g. -e model_weights_verify=full",
            )
        parsed[key] = yaml.safe_load(value) if value else ""
    return parsed


def converge(
    inventory: Path,
    *,
    limit: str | None = None,
    tags: str | None = None,
    check: bool = False,
    diff: bool = False,
    quiet: bool = False,
    playbook: str = "site.yml",
    extravars: dict[str, Any] | None = None,
) -> RunResult:
    loaded = load_cluster(inventory).inventory
    # A user's ANSIBLE_FORKS wins; otherwise one fork per host (runner.forks_for).
    forks = None if os.environ.get("ANSIBLE_FORKS") else forks_for(len(loaded.hosts))

    def run(on_event: Callable[[Event, RunState], None] | None) -> RunResult:
        return run_playbook(
            playbook,
            inventory,
            limit=limit,
            tags=tags,
            check=check,
            diff=diff,
            extravars=extravars,
            forks=forks,
            on_event=on_event,
        )

    if quiet:
        result = run(None)
    else:
        with LiveRun() as live:
            result = run(live)
        print_recap(result.state)
    if result.rc != 0 and not quiet:
        report_failure(playbook, result)
    return result


def report_failure(playbook: str, result: RunResult) -> None:
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
    err_console.print(f"Hint: fix the failures above, then re-run; full log in {result.artifacts}")
