"""ansible.builtin.file that answers "no change" from the role's read (a folder, an absent path).

For `state: directory` on a folder the role's `sglfleet_node_files` read (this play) shows with
the mode, owner and group asked for, and for `state: absent` on a path it shows missing, the
answer is "ok" without a remote run. Every other case (recurse, links, touch, symbolic modes, no
read) runs the builtin file module with the task's arguments. docs/controller.md, "One read per
role".
"""

from __future__ import annotations

import sys
from typing import Any

from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

FAST_COPY = "sglfleet_copy"
# Marks a result answered from the role's read (no remote run).
ANSWERED = "sglfleet_answered"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> Any:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        answer = self._answer(dict(self._task.args), task_vars)
        if answer is not None:
            result.update(answer)
            return result
        args = dict(self._task.args)
        result.update(
            self._execute_module(
                module_name="ansible.legacy.file", module_args=args, task_vars=task_vars
            )
        )
        return result

    def _answer(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        helpers = self._shared_loader_obj.action_loader.get(FAST_COPY, class_only=True)
        module = sys.modules[helpers.__module__]
        files = module.role_node_files(self._task, task_vars)
        path = args.get("path") or args.get("dest") or args.get("name")
        if files is None or not isinstance(path, str) or not path.startswith("/"):
            return None
        wanted = args.get("state")
        if wanted == "absent":
            path = path.rstrip("/") or "/"
            recorded = files.get(path)
            listed = module.role_listed_dirs(self._task, task_vars)
            missing = recorded is None and path.rsplit("/", 1)[0] in listed
            if missing or (isinstance(recorded, dict) and recorded.get("exists") is False):
                return {"changed": False, "path": path, "state": "absent", ANSWERED: True}
            return None
        if wanted != "directory":
            return None
        state = module.recorded_state(files, path)
        if state is None or not state.get("isdir"):
            return None
        checked = {key: value for key, value in args.items() if key not in ("name",)}
        if not module.attributes_match(checked, state):
            return None
        return {
            "changed": False,
            "path": path,
            "state": "directory",
            "mode": state["mode"],
            "owner": state["owner"],
            "group": state["group"],
            "uid": state["uid"],
            "gid": state["gid"],
            ANSWERED: True,
        }
