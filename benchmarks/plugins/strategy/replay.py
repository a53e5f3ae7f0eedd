"""Benchmark-only strategy: Ansible's linear strategy with module execution replayed.

Everything the controller does stays real: the strategy, variable computation (vars plugins,
host/group vars, role defaults), templating of arguments, conditions and loops, forking one
worker per host x task, callbacks, and the controller-side actions (set_fact, assert,
validate_argument_spec, include_vars, ...). Only what would touch a node is replaced: an action
that needs a connection (a module, template, copy, gather_facts, ...) returns the result
recorded on the lab for the same task on the lab host this host stands in for. A template
action still renders its template, as the real one does on the controller before any copy.

Environment: SGLFLEET_REPLAY_RECORDING (the fixture), SGLFLEET_REPLAY_RENAMED (optional json: tasks
moved since the recording, new key -> recorded key), SGLFLEET_REPLAY_HOSTS (json: inventory host ->
recorded host), SGLFLEET_REPLAY_MISSES (a file; one line per task with no recording).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

from ansible._internal._templating import _template_vars  # type: ignore[import-untyped]
from ansible.executor.task_executor import TaskExecutor  # type: ignore[import-untyped]
from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule  # type: ignore[import-untyped]
from ansible.template import trust_as_template  # type: ignore[import-untyped]

# The key function is shared with the recording callback (plugins are loaded as loose files).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from replay_keys import STANDS_IN, task_key

DOCUMENTATION = """
name: replay
short_description: linear strategy whose node-side actions return recorded results
description: For benchmarks/controller_scale.py only.
"""

# Loaded once in the main process; every forked worker inherits it.
_RECORDING_PATH = os.environ.get("SGLFLEET_REPLAY_RECORDING")
_RECORDING: dict[str, Any] = (
    json.loads(Path(_RECORDING_PATH).read_text(encoding="utf-8"))
    if _RECORDING_PATH
    else {"hosts": {}}
)


def apply_renames(recording: dict[str, Any], renamed: dict[str, str]) -> None:
    """Let a task moved since the recording (new key -> recorded key) replay its recorded result."""
    for tasks in recording["hosts"].values():
        for new_key, old_key in renamed.items():
            if old_key in tasks and new_key not in tasks:
                tasks[new_key] = tasks[old_key]


_RENAMED_PATH = os.environ.get("SGLFLEET_REPLAY_RENAMED")
if _RENAMED_PATH:
    _renamed = json.loads(Path(_RENAMED_PATH).read_text(encoding="utf-8"))
    apply_renames(_RECORDING, _renamed["renamed"])
_STANDS_IN_FOR: dict[str, str] = json.loads(os.environ.get("SGLFLEET_REPLAY_HOSTS", "{}"))
_MISSES = os.environ.get("SGLFLEET_REPLAY_MISSES", "")
_GATHER_ACTIONS = ("gather_facts", "ansible.builtin.gather_facts", "setup", "ansible.builtin.setup")
_INTERNAL_ITEM_KEYS = ("item", "ansible_loop_var", "ansible_index_var", "ansible_loop")


def _stable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _clean(result: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(result)
    for key in list(out):
        if (key.startswith("_ansible_") and key != "_ansible_no_log") or key in _INTERNAL_ITEM_KEYS:
            del out[key]
    return out


def recorded_result(
    recording: dict[str, Any], host: str, key: str, item: Any, has_item: bool
) -> dict[str, Any] | None:
    """The recorded result of task `key` on `host` (for a loop, of the item equal to `item`)."""
    entry = recording["hosts"].get(host, {}).get(key)
    if entry is None:
        return None
    if not has_item:
        result: dict[str, Any] | None = entry.get("result")
        return result
    items: list[dict[str, Any]] = entry.get("items", [])
    wanted = _stable(item)
    for candidate in items:
        if _stable(candidate.get("item")) == wanted:
            return candidate
    # An item that differs by host (a name, an address): the first item that ran stands in.
    for candidate in items:
        if not candidate.get("skipped"):
            return candidate
    return items[0] if items else None


class ReplayAction(ActionBase):  # type: ignore[misc]
    """Returns the recorded result; renders the template first when the task is a template."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        host = str(task_vars.get("inventory_hostname", ""))
        recorded_host = _STANDS_IN_FOR.get(host, host)
        key = task_key(self._task)
        loop_var = task_vars.get("ansible_loop_var")
        has_item = bool(loop_var) and loop_var in task_vars
        item = task_vars.get(str(loop_var)) if has_item else None
        if STANDS_IN.get(self._task.action, self._task.action) in (
            "ansible.builtin.template",
            "template",
        ):
            self._render_template(task_vars)
        if self._task.action in ("sglfleet_node_files", "ansible.legacy.sglfleet_node_files"):
            # Recorded before the role read existed: an empty read (every file action then replays).
            return {"changed": False, "files": {}, "listed": [], "units": {}}
        result = recorded_result(_RECORDING, recorded_host, key, item, has_item)
        if result is None:
            if _MISSES:
                with open(_MISSES, "a", encoding="utf-8") as handle:
                    handle.write(f"{recorded_host}\t{key}\n")
            return {"changed": False, "msg": "replay: nothing recorded for this task"}
        replayed = _clean(result)
        if self._task.action in _GATHER_ACTIONS and "ansible_facts" in replayed:
            # The real action marks the facts gathered (the mark is not in a callback's copy), so
            # later plays' `gathering = smart` skips gathering as on the lab.
            replayed["ansible_facts"]["_ansible_facts_gathered"] = True
        return replayed

    def _render_template(self, task_vars: dict[str, Any]) -> None:
        # The real template action renders on the controller before anything reaches the node.
        source_arg = self._task.args.get("src")
        if not source_arg:
            return
        source = self._find_needle("templates", source_arg)
        data = trust_as_template(self._loader.get_text_file_contents(source))
        search = [*task_vars.get("ansible_search_path", []), self._loader._basedir]
        search.append(os.path.dirname(source))
        variables = dict(task_vars)
        variables.update(
            _template_vars.generate_ansible_template_vars(
                path=source_arg,
                fullpath=source,
                dest_path=self._task.args.get("dest"),
                include_ansible_managed="ansible_managed" not in variables,
            )
        )
        paths = [p for base in search for p in (os.path.join(base, "templates"), base)]
        templar = self._templar.copy_with_new_env(searchpath=paths, available_variables=variables)
        templar.template(data, escape_backslashes=False)


_original_handler = TaskExecutor._get_action_handler_with_module_context


def _replaying_handler(self: TaskExecutor, templar: Any) -> tuple[Any, Any]:
    handler, module = _original_handler(self, templar)
    # Controller-side actions (set_fact, assert, validate_argument_spec, ...) run for real.
    if not getattr(handler, "_requires_connection", True):
        return handler, module
    replay = ReplayAction(
        task=handler._task,
        connection=handler._connection,
        play_context=handler._play_context,
        loader=handler._loader,
        templar=handler._templar,
        shared_loader_obj=handler._shared_loader_obj,
    )
    return replay, module


TaskExecutor._get_action_handler_with_module_context = _replaying_handler


class StrategyModule(LinearStrategyModule):  # type: ignore[misc]
    pass
