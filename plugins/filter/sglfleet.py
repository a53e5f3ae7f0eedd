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
from sglfleet.launch import launch_table  # noqa: E402
from sglfleet.models import Inventory  # noqa: E402
from sglfleet.packages import missing as sglfleet_packages_missing  # noqa: E402
from sglfleet.packages import parse_dpkg_query as sglfleet_dpkg_installed  # noqa: E402
from sglfleet.pyzip import build  # noqa: E402
from sglfleet.topology import check, router_workers  # noqa: E402

# One load and one plan per inventory per process: templating runs once per host, and a plan of a
# 1,000-node inventory must not be recomputed 1,000 times.
_INVENTORIES: dict[str, Inventory] = {}
_TABLES: dict[str, dict[str, dict[str, Any]]] = {}


def _inventory(inventory_dir: str) -> Inventory:
    if inventory_dir not in _INVENTORIES:
        _INVENTORIES[inventory_dir] = load_inventory(inventory_dir)
    return _INVENTORIES[inventory_dir]


def sglfleet_node_launch(inventory_dir: str, host: str) -> dict[str, Any] | None:
    """What `host` serves (group, rank, args, env) under the inventory at `inventory_dir`."""
    if inventory_dir not in _TABLES:
        _TABLES[inventory_dir] = launch_table(_inventory(inventory_dir))
    return _TABLES[inventory_dir].get(host)


def sglfleet_router_workers(inventory_dir: str) -> dict[str, Any]:
    """The router's workers: rank-0 URLs of regular groups, or prefill/decode pairs."""
    return router_workers(_inventory(inventory_dir))


def sglfleet_inventory_problems(inventory_dir: str) -> list[str]:
    """Every problem the validator finds, one line each with its fix; empty when valid."""
    try:
        problems = check(load_inventory(inventory_dir))
    except InventoryError as exc:
        problems = exc.problems
    return [f"{p.render()} -- fix: {p.hint}" for p in problems]


def sglfleet_pyz(package_dir: str) -> str:
    """Controller path of a reproducible zip of this package (built once, content-addressed)."""
    return str(build(package_dir))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_node_launch": sglfleet_node_launch,
            "sglfleet_inventory_problems": sglfleet_inventory_problems,
            "sglfleet_router_workers": sglfleet_router_workers,
            "sglfleet_packages_missing": sglfleet_packages_missing,
            "sglfleet_dpkg_installed": sglfleet_dpkg_installed,
            "sglfleet_pyz": sglfleet_pyz,
        }
