"""Ansible vars plugin: the sglfleet plan, computed once per run, as each host's `sglfleet_plan`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ansible import context
from ansible.errors import AnsibleError
from ansible.inventory.host import Host
from ansible.plugins.vars import BaseVarsPlugin
from ansible.utils.display import Display

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.host_plan import InventoryPlans, inventory_plans  # noqa: E402

DOCUMENTATION = """
    name: sglfleet_plan
    short_description: Each host's part of the sglfleet cluster plan, planned once per run
    description:
      - Loads the sglfleet inventory (the inventory source's directory holding hosts.yml, or
        SGLFLEET_INVENTORY_DIR), applies the run's extra vars on top, checks and plans the whole
        cluster once in Ansible's main process, and gives every host the variable sglfleet_plan
        (launch, router workers, scrape targets, firewall rule templates, problems).
      - Playbooks read sglfleet_plan instead of calling the planner per host and task.
    options:
      stage:
        ini:
          - key: stage
            section: vars_sglfleet_plan
        env:
          - name: ANSIBLE_VARS_PLUGIN_STAGE
    extends_documentation_fragment:
      - vars_plugin_staging
"""

display = Display()

# One plan per (inventory, extra vars) for the life of the ansible-playbook process.
_PLANS: dict[tuple[str, str], InventoryPlans] = {}
_EXTRA: dict[tuple[str, ...], dict[str, Any]] = {}


def _extra_vars(loader: Any) -> dict[str, Any]:
    """The run's `-e` values (ansible-runner passes them as `-e @file`), parsed once."""
    raw = tuple(str(v) for v in (context.CLIARGS.get("extra_vars") or ()))
    if raw not in _EXTRA:
        from ansible.utils.vars import load_extra_vars

        _EXTRA[raw] = dict(load_extra_vars(loader)) if raw else {}
    return _EXTRA[raw]


def _inventory_dir(path: str) -> str | None:
    override = os.environ.get("SGLFLEET_INVENTORY_DIR")
    if override:
        return override
    if os.path.isfile(os.path.join(path, "hosts.yml")):
        return path
    return None


def plans(inventory_dir: str, extra_vars: dict[str, Any]) -> InventoryPlans:
    key = (os.path.realpath(inventory_dir), json.dumps(extra_vars, sort_keys=True, default=str))
    if key not in _PLANS:
        started = time.perf_counter()
        try:
            _PLANS[key] = inventory_plans(inventory_dir, extra_vars)
        except Exception as exc:  # a planner bug must name itself, not pass as a host's vars
            raise AnsibleError(f"sglfleet_plan: planning {inventory_dir} failed: {exc}") from exc
        planned = _PLANS[key]
        display.vvv(
            f"sglfleet_plan: planned {planned.inventory_dir} once for this run:"
            f" {len(planned.hosts)} hosts, {len(planned.problems)} problems,"
            f" {time.perf_counter() - started:.3f} s (pid {os.getpid()})"
        )
    return _PLANS[key]


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True
    is_stateless = True

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool = True) -> dict[str, Any]:
        hosts = [e for e in (entities if isinstance(entities, list) else [entities])]
        hosts = [e for e in hosts if isinstance(e, Host)]  # groups get nothing
        if not hosts:
            return {}
        inventory_dir = _inventory_dir(path)
        if inventory_dir is None:
            return {}
        planned = plans(inventory_dir, _extra_vars(loader))
        if len(hosts) == 1:
            return {"sglfleet_plan": planned.for_host(hosts[0].name)}
        raise AnsibleError("sglfleet_plan: asked for several hosts at once; one host per call")
