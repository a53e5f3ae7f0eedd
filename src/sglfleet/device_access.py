"""Which device nodes a systemd unit's `DeviceAllow=` list reaches, resolved the way systemd does.

systemd (src/core/bpf-devices.c, `bpf_devices_allow_list_major`) turns `char-NAME` into "every
minor of every major whose name in /proc/devices' "Character devices:" section matches NAME" (an
fnmatch pattern), and a path into that node's own major:minor (a path that does not exist is
skipped with a warning). Pure functions: the role feeds them live probes, the tests captured ones.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

# ls -ln: "crw-rw-rw- 1 0 0 195,   0 Nov 30 11:45 /dev/nvidia0" (a path, or a name under a header).
_LS_NODE = re.compile(
    r"^(?P<kind>[cb])\S*\s+\d+\s+\S+\s+\S+\s+(?P<major>\d+),\s*(?P<minor>\d+)\s+.*?(?P<name>\S+)$"
)


@dataclass(frozen=True)
class DeviceNode:
    path: str
    kind: str  # "c" or "b"
    major: int
    minor: int


def parse_proc_devices(text: str) -> dict[str, list[tuple[int, str]]]:
    """/proc/devices -> {"c": [(major, name)], "b": [...]}; a major may carry several names."""
    sections: dict[str, list[tuple[int, str]]] = {"c": [], "b": []}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "Character devices:":
            current = "c"
        elif stripped == "Block devices:":
            current = "b"
        elif not stripped:
            current = None
        elif current is not None:
            number, _, name = stripped.partition(" ")
            if number.isdigit() and int(number) > 0:
                sections[current].append((int(number), name.strip()))
    return sections


def parse_ls_nodes(text: str) -> list[DeviceNode]:
    """`ls -ln PATHS` output (files and directory listings) -> the device nodes in it, unique."""
    nodes: dict[str, DeviceNode] = {}
    directory = ""
    for line in text.splitlines():
        if line.endswith(":") and line.startswith("/"):
            directory = line[:-1]
            continue
        match = _LS_NODE.match(line.strip())
        if not match:
            continue
        name = match["name"]
        path = name if name.startswith("/") else f"{directory}/{name}"
        nodes[path] = DeviceNode(path, match["kind"], int(match["major"]), int(match["minor"]))
    return list(nodes.values())


def device_allow_entries(unit_text: str) -> list[str]:
    """The `DeviceAllow=` specifiers of a unit file (the node or class part, access dropped)."""
    entries = []
    for line in unit_text.splitlines():
        if line.startswith("DeviceAllow="):
            value = line.split("=", 1)[1].strip()
            if value:
                entries.append(value.split()[0])
    return entries


def resolve(
    entries: list[str], proc_devices: str, nodes: list[DeviceNode]
) -> set[tuple[str, int, int | None]]:
    """Each entry -> (kind, major, minor; None: every minor), as systemd programs the cgroup."""
    majors = parse_proc_devices(proc_devices)
    by_path = {node.path: node for node in nodes}
    allowed: set[tuple[str, int, int | None]] = set()
    for entry in entries:
        if entry.startswith(("char-", "block-")):
            kind = "c" if entry.startswith("char-") else "b"
            pattern = entry.split("-", 1)[1]
            for major, name in majors[kind]:
                if fnmatch.fnmatchcase(name, pattern):
                    allowed.add((kind, major, None))
        elif entry.startswith("/dev/"):
            node = by_path.get(entry)
            if node is not None:  # systemd skips a node that does not exist (with a warning)
                allowed.add((node.kind, node.major, node.minor))
    return allowed


def uncovered(entries: list[str], proc_devices: str, nodes: list[DeviceNode]) -> list[DeviceNode]:
    """The nodes a unit with these `DeviceAllow=` entries and DevicePolicy=closed cannot open."""
    allowed = resolve(entries, proc_devices, nodes)
    return [
        node
        for node in nodes
        if (node.kind, node.major, None) not in allowed
        and (node.kind, node.major, node.minor) not in allowed
    ]


def unused_entries(entries: list[str], proc_devices: str, nodes: list[DeviceNode]) -> list[str]:
    """Entries matching nothing on this host (fine: the other module flavour, absent hardware)."""
    return [entry for entry in entries if not resolve([entry], proc_devices, nodes)]
