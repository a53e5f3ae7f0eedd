"""ansible.builtin.copy that answers "no change" without a remote run when the role's read says so.

A no-change rerun is latency-bound on remote module runs, and the builtin copy (and template, which
ends in copy) spends two on an unchanged file: `stat` for the checksum, then `file` for the
attributes. A role reads all of its files once (`sglfleet_node_files`, registered as
`__<role>_node_files` in the same play); this action takes the checksum and attributes from that
read. Only when the read shows the desired state exactly (regular file, same SHA-1, and the mode,
owner and group asked for) does it skip the remote runs; anything else (a missing or changed file, a
link, a symbolic mode, SELinux or attribute flags, no read in this play) runs the builtin code path
unchanged, so a difference is always found and fixed by the builtin module. docs/controller.md,
"One read per role".
"""

from __future__ import annotations

import stat
import sys
from typing import Any

from ansible.plugins.action.copy import ActionModule as CopyAction  # type: ignore[import-untyped]

# Arguments of the file module a recorded state can answer for (anything else: the module decides).
ANSWERABLE = frozenset(
    {"path", "dest", "_original_basename", "recurse", "state", "owner", "group", "mode"}
    | {"follow", "force", "unsafe_writes"}
)
# Set by this project's sglfleet_node_files action on its result: the play it read in, and the
# host's count of changed or failed results at the read (callback sglfleet_changes).
PLAY_KEY = "sglfleet_play"
CHANGES_KEY = "sglfleet_changes"
REGISTRY = "sglfleet_run_changes"


def host_changes(task_vars: dict[str, Any]) -> int | None:
    """The host's count of changed or failed results so far, or None without the callback."""
    counts = getattr(sys.modules.get(REGISTRY), "counts", None)
    host = task_vars.get("inventory_hostname")
    if not isinstance(counts, dict) or not isinstance(host, str):
        return None
    return int(counts.get(host, 0))


def _role_read(task: Any, task_vars: dict[str, Any]) -> dict[str, Any] | None:
    role = getattr(task, "_role", None)
    if role is None:
        return None
    registered = task_vars.get(f"__{role.get_name(include_role_fqcn=False)}_node_files")
    if not isinstance(registered, dict) or registered.get("failed") or registered.get("skipped"):
        return None
    play = task.get_play()
    if play is None or registered.get(PLAY_KEY) != play._uuid:
        return None
    # Nothing changed on the host since the read (else it may be stale: run the builtin module).
    seen = registered.get(CHANGES_KEY)
    if seen is None or host_changes(task_vars) != seen:
        return None
    return registered


def role_node_units(task: Any, task_vars: dict[str, Any]) -> dict[str, Any] | None:
    """The systemd units the task's role read in this play, or None."""
    units = (_role_read(task, task_vars) or {}).get("units")
    return units if isinstance(units, dict) else None


def role_node_files(task: Any, task_vars: dict[str, Any]) -> dict[str, Any] | None:
    """The paths the task's role read in this play (`__<role>_node_files`), or None."""
    files = (_role_read(task, task_vars) or {}).get("files")
    return files if isinstance(files, dict) else None


def role_listed_dirs(task: Any, task_vars: dict[str, Any]) -> list[str]:
    """The folders whose every entry that read listed (a path missing in one of them is absent)."""
    listed = (_role_read(task, task_vars) or {}).get("listed")
    return [str(folder) for folder in listed] if isinstance(listed, list) else []


def mode_matches(wanted: Any, current: str | None) -> bool:
    """An octal mode (string or int) equal to the recorded one; symbolic modes are not answered."""
    if wanted is None:
        return True
    if current is None:
        return False
    if isinstance(wanted, int):
        number = wanted
    else:
        text = str(wanted).strip()
        if not text or any(c not in "01234567" for c in text):
            return False
        number = int(text, 8)
    return stat.S_IMODE(number) == int(current, 8) and number == stat.S_IMODE(number)


def id_matches(wanted: Any, name: str | None, number: int | None) -> bool:
    if wanted is None:
        return True
    text = str(wanted)
    return text == name or (text.isdigit() and number is not None and int(text) == number)


def attributes_match(args: dict[str, Any], state: dict[str, Any]) -> bool:
    """Whether the file module, given `args`, would change nothing on a path in `state`."""
    if any(value is not None for key, value in args.items() if key not in ANSWERABLE):
        return False
    if args.get("unsafe_writes") not in (None, False) or args.get("recurse") not in (None, False):
        return False
    return (
        mode_matches(args.get("mode"), state.get("mode"))
        and id_matches(args.get("owner"), state.get("owner"), state.get("uid"))
        and id_matches(args.get("group"), state.get("group"), state.get("gid"))
    )


def recorded_state(files: dict[str, Any] | None, path: Any) -> dict[str, Any] | None:
    if files is None or not isinstance(path, str) or not path.startswith("/"):
        return None
    state = files.get(path.rstrip("/") or "/")
    if not isinstance(state, dict) or state.get("exists") is not True or state.get("islnk"):
        return None
    return state


class ActionModule(CopyAction):  # type: ignore[misc]
    """The builtin copy, with its unchanged-file remote runs answered from the role's read."""

    def _sglfleet_files(self, task_vars: dict[str, Any] | None) -> dict[str, Any] | None:
        if not hasattr(self, "_sglfleet_read"):
            self._sglfleet_read = role_node_files(self._task, task_vars or {})
        return self._sglfleet_read

    def _execute_remote_stat(
        self, path: Any, all_vars: Any, follow: Any, tmp: Any = None, checksum: Any = True
    ) -> Any:
        state = recorded_state(self._sglfleet_files(all_vars), path)
        if state is None or not state.get("isreg") or not state.get("checksum") or not checksum:
            return super()._execute_remote_stat(path, all_vars, follow, tmp=tmp, checksum=checksum)
        return {
            "exists": True,
            "isdir": False,
            "isreg": True,
            "islnk": False,
            "checksum": state["checksum"],
            "mode": state.get("mode"),
            "path": path,
        }

    def _execute_module(
        self, module_name: Any = None, module_args: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if module_name == "ansible.legacy.file" and isinstance(module_args, dict):
            answer = self._sglfleet_answer(module_args, kwargs.get("task_vars"))
            if answer is not None:
                return answer
        return super()._execute_module(module_name, module_args, *args, **kwargs)

    def _sglfleet_answer(
        self, module_args: dict[str, Any], task_vars: Any
    ) -> dict[str, Any] | None:
        path = module_args.get("dest") or module_args.get("path")
        state = recorded_state(self._sglfleet_files(task_vars), path)
        if state is None or module_args.get("state") != "file" or not state.get("isreg"):
            return None
        if not attributes_match(module_args, state):
            return None
        return {
            "changed": False,
            "path": path,
            "dest": path,
            "state": "file",
            "mode": state["mode"],
            "owner": state["owner"],
            "group": state["group"],
            "uid": state["uid"],
            "gid": state["gid"],
            "size": state["size"],
            "sglfleet_answered": True,
        }
