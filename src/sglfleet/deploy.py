"""Converge a cluster: validate the inventory, then run site.yml with live progress."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sglfleet.errors import InventoryError, SglfleetError
from sglfleet.events import Event, RunState
from sglfleet.inventory import load_inventory
from sglfleet.models import ClusterPlan, Inventory
from sglfleet.runner import RunResult, forks_for, run_playbook
from sglfleet.topology import memory_problems, plan


def require_fit(inventory: Inventory) -> None:
    """Raise InventoryError (exit 2) naming every group whose model does not fit its GPUs."""
    problems = memory_problems(inventory)
    if problems:
        raise InventoryError(problems, inventory.path)


def _validated(inventory: Path) -> tuple[Inventory, ClusterPlan]:
    loaded = load_inventory(inventory)
    cluster = plan(loaded)
    require_fit(loaded)
    return loaded, cluster


def validate(inventory: Path) -> ClusterPlan:
    """Everything checkable without a host; raises InventoryError (exit 2) before any connection."""
    return _validated(inventory)[1]


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
    loaded, _ = _validated(inventory)
    # A user's ANSIBLE_FORKS wins; otherwise one fork per host (runner.forks_for).
    forks = None if os.environ.get("ANSIBLE_FORKS") else forks_for(len(loaded.hosts))
    from sglfleet.ui.render import LiveRun, err_console, print_recap

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
        err_console.print(f"Error: {playbook} failed (ansible exit code {result.rc})")
        err_console.print(
            f"Hint: fix the failures above, then re-run; full log in {result.artifacts}"
        )
    return result
