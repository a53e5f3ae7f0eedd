"""Ansible filters that hand the inventory to sglfleet's planner, so plan and units agree."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.errors import InventoryError  # noqa: E402
from sglfleet.inventory import load_inventory  # noqa: E402
from sglfleet.topology import check, node_launch, router_workers  # noqa: E402

_CACHE: dict[str, Any] = {}


def sglfleet_node_launch(inventory_dir: str, host: str) -> dict[str, Any] | None:
    """What `host` serves (group, rank, args, env) under the inventory at `inventory_dir`."""
    if inventory_dir not in _CACHE:
        _CACHE[inventory_dir] = load_inventory(inventory_dir)
    return node_launch(_CACHE[inventory_dir], host)


def sglfleet_router_workers(inventory_dir: str) -> dict[str, Any]:
    """The router's workers: rank-0 URLs of regular groups, or prefill/decode pairs."""
    if inventory_dir not in _CACHE:
        _CACHE[inventory_dir] = load_inventory(inventory_dir)
    return router_workers(_CACHE[inventory_dir])


def sglfleet_inventory_problems(inventory_dir: str) -> list[str]:
    """Every problem the validator finds, one line each with its fix; empty when valid."""
    try:
        inventory = load_inventory(inventory_dir)
        problems = check(inventory)
    except InventoryError as exc:
        problems = exc.problems
    return [f"{p.render()} -- fix: {p.hint}" for p in problems]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_node_launch": sglfleet_node_launch,
            "sglfleet_inventory_problems": sglfleet_inventory_problems,
            "sglfleet_router_workers": sglfleet_router_workers,
        }
