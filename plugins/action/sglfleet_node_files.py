"""Runs the sglfleet_node_files module and marks its result with when it was read.

The marked result, registered as `__<role>_node_files`, is what sglfleet_copy, sglfleet_template,
sglfleet_file and sglfleet_systemd of the same role read. It records the play it was read in (a
read from an earlier play of the run is not used) and how many of the host's results had changed
something when it was read (callback `sglfleet_changes`; once that count moves, the read is not
used either).
"""

from __future__ import annotations

import sys
from typing import Any

from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

PLAY_KEY = "sglfleet_play"
CHANGES_KEY = "sglfleet_changes"
# The helpers (host_changes) live in sglfleet_copy, the action every answer goes through.
FAST_COPY = "sglfleet_copy"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> Any:
        result = super().run(tmp, task_vars)
        del tmp
        result.update(
            self._execute_module(
                module_name="sglfleet_node_files",
                module_args=dict(self._task.args),
                task_vars=task_vars,
            )
        )
        play = self._task.get_play()
        if play is not None and not result.get("failed"):
            result[PLAY_KEY] = play._uuid
            helpers = self._shared_loader_obj.action_loader.get(FAST_COPY, class_only=True)
            result[CHANGES_KEY] = sys.modules[helpers.__module__].host_changes(task_vars or {})
        return result
