"""Which apt package specs a node already satisfies, from `package_facts`.

Every apt task opens the node's package cache (about 1-2 s of CPU) even when nothing is to be
installed. The play reads the installed packages once (`ansible.builtin.package_facts`), and each
apt task runs only for the specs this returns. Without those facts (a role run on its own, e.g.
by Molecule) every spec is returned, so the apt task runs as before: the shortcut can only skip
work that is already done, never skip work that is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any


def _split(spec: str) -> tuple[str, str | None]:
    name, sep, version = spec.partition("=")
    return name.split(":", 1)[0].strip(), (version.strip() if sep else None)


def missing(specs: str | Iterable[str], installed: Mapping[str, Any] | None) -> list[str]:
    """Specs (`name`, `name=version`, `name=version-*`) not met by the installed packages."""
    wanted = [specs] if isinstance(specs, str) else list(specs)
    if not installed:
        return wanted
    out = []
    for spec in wanted:
        name, version = _split(spec)
        entries = installed.get(name) or []
        versions = [
            str(entry.get("version", "")) for entry in entries if isinstance(entry, Mapping)
        ]
        wrong_version = version is not None and not any(fnmatchcase(v, version) for v in versions)
        if not versions or wrong_version:
            out.append(spec)
    return out


def parse_dpkg_query(text: str) -> dict[str, list[dict[str, str]]]:
    """Output of dpkg-query -W with `${Package} ${Version} ${db:Status-Status} ${db:Status-Want}`.

    (The last field is optional.)

    The shape is package_facts' (name -> list of {version}), plus `selection` (dpkg's wanted
    state: install, hold, deinstall, purge) where the fourth field was asked for.
    Only packages whose status is `installed` count (removed ones keep their config files and a
    `config-files` status).
    """
    out: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) not in (3, 4) or parts[2].strip() != "installed":
            continue
        name = parts[0].split(":", 1)[0]
        entry = {"version": parts[1]}
        if len(parts) == 4:
            entry["selection"] = parts[3]
        out.setdefault(name, []).append(entry)
    return out


def selection_pending(
    names: str | Iterable[str], wanted: str, installed: Mapping[str, Any] | None
) -> list[str]:
    """Packages whose dpkg selection is not `wanted` (hold or install) as read at the run's start.

    Without the read (a role run on its own), or for a package not installed then (it may be
    installed in this run), every name is returned, so dpkg_selections runs as before: the read
    can only skip a selection that is already the one wanted.
    """
    listed = [names] if isinstance(names, str) else list(names)
    if not installed:
        return listed
    out = []
    for name in listed:
        entries = [e for e in installed.get(name) or [] if isinstance(e, Mapping)]
        selections = {str(e.get("selection", "")) for e in entries}
        if selections != {wanted}:
            out.append(name)
    return out
