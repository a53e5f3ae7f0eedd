"""Runs the sglfleet_node_files module and marks its result with the play it was read in.

The marked result, registered as `__<role>_node_files`, is what sglfleet_copy, sglfleet_template and
sglfleet_file of the same role read; a read from an earlier play of the run is not used.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

PLAY_KEY = "sglfleet_play"


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
        return result
