"""Converge a cluster: validate the inventory, then run site.yml with live progress."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from sglfleet import checks
from sglfleet.errors import SglfleetError
from sglfleet.inventory import load_inventory
from sglfleet.models import ClusterPlan, Inventory
from sglfleet.runner import EventHandler, RunResult, forks_for, run_playbook
from sglfleet.topology import plan


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
    playbook: str = "site.yml",
    extravars: dict[str, Any] | None = None,
    on_event: EventHandler | None = None,
) -> RunResult:
    """Check and plan the inventory, then run `playbook` (site.yml); `on_event` sees every event.

    Prints nothing: the CLI shows the run (`ui.render.LiveRun`) and its result."""
    loaded = load_cluster(inventory).inventory
    # A user's ANSIBLE_FORKS wins; otherwise one fork per host (runner.forks_for).
    forks = None if os.environ.get("ANSIBLE_FORKS") else forks_for(len(loaded.hosts))

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
