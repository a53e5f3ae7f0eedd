"""The key a recorded task result is stored and found under (shared by both benchmark plugins).

A key must match between the lab run that recorded it and a replay against another inventory, so
it uses the task as written (its name before templating), never host names or file line numbers.
"""

from __future__ import annotations

from typing import Any

# This project's actions that stand in for a builtin one (plugins/action): recorded under its name.
STANDS_IN = {
    f"{prefix}sglfleet_{name}": f"ansible.builtin.{builtin}"
    for prefix in ("", "ansible.legacy.")
    for name, builtin in (
        ("template", "template"),
        ("copy", "copy"),
        ("file", "file"),
        ("systemd", "systemd_service"),
    )
}


def _play_name(task: Any) -> str:
    parent = task
    while parent is not None:
        play = getattr(parent, "_play", None)
        if play is not None:
            return str(play.get_name())
        parent = getattr(parent, "_parent", None)
    return ""


def task_key(task: Any) -> str:
    """play | role | task name as written | action."""
    data = getattr(task, "_ds", None)
    name = data.get("name") if isinstance(data, dict) else None
    if not name:
        name = task.get_name(include_role_fqcn=False) if hasattr(task, "get_name") else ""
    role = task._role.get_name(include_role_fqcn=False) if getattr(task, "_role", None) else ""
    action = STANDS_IN.get(str(task.action), str(task.action))
    return " | ".join((_play_name(task), role, str(name), action))
