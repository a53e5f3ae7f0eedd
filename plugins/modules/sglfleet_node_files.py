#!/usr/bin/python
"""Read the state of a role's files and systemd units on a node in one module run (read-only)."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: sglfleet_node_files
short_description: State of a role's files and folders on a node, in one module run
description:
  - Reads, without changing anything, the type, mode, owner, group and SHA-1 of each path in
    O(paths), and of every entry directly inside each folder in O(dirs).
  - The role registers the result as C(__<role>_node_files). The actions
    C(sglfleet_template), C(sglfleet_copy) and C(sglfleet_file) of that role then answer "no
    change" on the controller for a path whose recorded state already is the desired one, and run
    the builtin module otherwise (docs/controller.md, "One read per role").
options:
  paths:
    description: Paths to read (a missing one is recorded as missing).
    type: list
    elements: path
    default: []
  dirs:
    description: Folders whose entries (not recursively) are read too, and the folder itself.
    type: list
    elements: path
    default: []
  units:
    description:
      - systemd units whose properties (C(systemctl show)) and boot setting
        (C(systemctl is-enabled -l)) are read too. C(sglfleet_systemd) answers from them.
    type: list
    elements: str
    default: []
  max_checksum_size:
    description: Regular files larger than this get no checksum (the actions then run the module).
    type: int
    default: 4194304
author: sglfleet
"""

RETURN = r"""
files:
  description: Path -> state (exists, type, mode, uid, gid, owner, group, size, checksum).
  returned: always
  type: dict
listed:
  description: The folders of O(dirs) whose entries were read (a path missing there is absent).
  returned: always
  type: list
units:
  description:
    - Unit -> C(show_rc), C(status) (the properties, as the systemd_service module returns them),
      C(enabled_rc) and C(enabled) (what C(systemctl is-enabled -l) printed). Empty without
      systemctl.
  returned: always
  type: dict
"""


def _sha1(path: str) -> str | None:
    digest = hashlib.sha1(usedforsecurity=False)  # the checksum copy and template compare
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _name(lookup: Any, number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def path_state(path: str, max_checksum_size: int) -> dict[str, Any]:
    """What stat says of `path` (not following a link), in the form the actions compare."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as error:
        return {"exists": None, "error": str(error)}
    mode = info.st_mode
    state: dict[str, Any] = {
        "exists": True,
        "isreg": stat.S_ISREG(mode),
        "isdir": stat.S_ISDIR(mode),
        "islnk": stat.S_ISLNK(mode),
        "mode": f"{stat.S_IMODE(mode):04o}",
        "uid": info.st_uid,
        "gid": info.st_gid,
        "owner": _name(pwd.getpwuid, info.st_uid),
        "group": _name(grp.getgrgid, info.st_gid),
        "size": info.st_size,
    }
    if state["isreg"] and info.st_size <= max_checksum_size:
        state["checksum"] = _sha1(path)
    return state


def read_files(
    paths: list[str], dirs: list[str], max_checksum_size: int
) -> tuple[dict[str, Any], list[str]]:
    files: dict[str, Any] = {}
    listed: list[str] = []
    for folder in dirs:
        folder = os.path.normpath(folder)
        files[folder] = path_state(folder, max_checksum_size)
        if not files[folder].get("isdir"):
            continue
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        listed.append(folder)
        for name in names:
            entry = os.path.join(folder, name)
            files[entry] = path_state(entry, max_checksum_size)
    for path in paths:
        path = os.path.normpath(path)
        if path not in files:
            files[path] = path_state(path, max_checksum_size)
    return files, listed


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show` output as a dict, as the systemd_service module reads it.

    Only an `Exec*` value opened with `{` and not closed on its line runs on to the line ending in
    `}` (a Description may start with `{` and stay on one line).
    """
    status: dict[str, str] = {}
    key: str | None = None
    pending: list[str] = []
    for line in text.splitlines():
        if key is not None:
            pending.append(line)
            if line.rstrip().endswith("}"):
                status[key] = "\n".join(pending).strip()
                key, pending = None, []
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        opens = name.startswith("Exec") and value.lstrip().startswith("{")
        if opens and not value.rstrip().endswith("}"):
            key, pending = name, [value]
            continue
        status[name] = value.strip()
    if key is not None:
        status[key] = "\n".join(pending).strip()
    return status


def read_units(units: list[str]) -> dict[str, Any]:
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return {}
    read: dict[str, Any] = {}
    for unit in units:
        show = subprocess.run(
            [systemctl, "show", unit], capture_output=True, text=True, check=False
        )
        enabled = subprocess.run(
            [systemctl, "is-enabled", "-l", unit], capture_output=True, text=True, check=False
        )
        read[unit] = {
            "show_rc": show.returncode,
            "status": parse_show(show.stdout) if show.returncode == 0 else {},
            "enabled_rc": enabled.returncode,
            "enabled": enabled.stdout.strip(),
        }
    return read


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "dirs": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "max_checksum_size": {"type": "int", "default": 4 * 1024 * 1024},
        },
        supports_check_mode=True,
    )
    params = module.params
    files, listed = read_files(params["paths"], params["dirs"], params["max_checksum_size"])
    module.exit_json(changed=False, files=files, listed=listed, units=read_units(params["units"]))


if __name__ == "__main__":
    main()
