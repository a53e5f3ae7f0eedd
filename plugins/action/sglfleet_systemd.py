"""ansible.builtin.systemd_service that answers "no change" from the role's read of its units.

The builtin module spends one remote run per task even when the unit already is enabled and
running. A role reads its units once (`sglfleet_node_files` with `units:`, registered as
`__<role>_node_files`); for a task that only asks `enabled: true` and/or `state: started`, this
action answers "ok" from that read when the unit is loaded, enabled (as the module counts it) and
active, and nothing changed on the host since the read; a task naming only the unit (to read its
properties) gets the recorded properties. Everything else (a daemon-reload, restart,
reload, stop, disable, mask, another scope, a unit that is inactive or not enabled, no read, a read
that may be stale) runs the builtin module with the task's arguments. docs/controller.md, "One
read per role".
"""

from __future__ import annotations

import sys
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean  # type: ignore[import-untyped]
from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

FAST_COPY = "sglfleet_copy"
MODULE = "ansible.legacy.systemd_service"
ANSWERED = "sglfleet_answered"
# The arguments whose default (or false) value an answer requires.
OFF_BY_DEFAULT = ("daemon_reload", "daemon-reload", "daemon_reexec", "force", "no_block")
# What `systemctl is-enabled` prints for a unit the module enables again anyway.
ENABLE_AGAIN = frozenset({"enabled-runtime", "indirect", "alias"})
RUNNING = frozenset({"active", "activating"})


def _unit_name(args: dict[str, Any]) -> str | None:
    for key in ("name", "service", "unit"):
        if isinstance(args.get(key), str) and args[key]:
            return str(args[key])
    return None


def answer(args: dict[str, Any], units: dict[str, Any] | None) -> dict[str, Any] | None:
    """The module's result for `args` from the recorded `units`, or None (run the module)."""
    name = _unit_name(args)
    if units is None or name is None or not isinstance(units.get(name), dict):
        return None
    if any(args.get(key) not in (None, False) and boolean(args[key]) for key in OFF_BY_DEFAULT):
        return None
    if args.get("masked") is not None or args.get("scope") not in (None, "system"):
        return None
    state, enabled = args.get("state"), args.get("enabled")
    if state not in (None, "started"):
        return None
    if enabled is not None and boolean(enabled, strict=False) is not True:
        return None
    recorded = units[name]
    status = recorded.get("status")
    if recorded.get("show_rc") != 0 or not isinstance(status, dict) or "LoadError" in status:
        return None
    result: dict[str, Any] = {"changed": False, "name": name, "status": status, ANSWERED: True}
    if state is None and enabled is None:
        # Only the unit's properties asked for: the module returns them, whatever the unit's load
        # state (a unit not found included).
        return result if "LoadState" in status else None
    if status.get("LoadState") != "loaded":
        return None
    if enabled is not None:
        if recorded.get("enabled_rc") != 0 or recorded.get("enabled") in ENABLE_AGAIN:
            return None
        result["enabled"] = True
    if state is not None:
        if status.get("ActiveState") not in RUNNING:
            return None
        result["state"] = "started"
    return result


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> Any:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        helpers = self._shared_loader_obj.action_loader.get(FAST_COPY, class_only=True)
        units = sys.modules[helpers.__module__].role_node_units(self._task, task_vars)
        answered = answer(dict(self._task.args), units)
        if answered is not None:
            result.update(answered)
            return result
        result.update(
            self._execute_module(
                module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars
            )
        )
        return result
