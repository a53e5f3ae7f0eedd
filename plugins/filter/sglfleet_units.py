"""The `validate:` command that checks a systemd unit file before it is installed.

`sglfleet_template` (like the builtin template and copy) runs `validate` on the rendered temporary
file and installs it only when the command exits 0. The temporary file has no unit name, so the
check hands it to `systemd-analyze verify` as PATH:NAME (systemd 248 and newer: Debian 12 has 252,
Ubuntu 24.04 255), which verifies it under the name it will be installed as, drop-ins and
referenced units included. systemd's exit code alone lets unknown keys pass (it only warns), so a
warning that names this unit fails the check too; warnings about other, vendor units do not.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|mount|path|target|slice)$")

# `%s` is the temporary file (Ansible substitutes it); $2 is the unit's name. The script has no
# other `%`: Ansible formats the whole string with %.
_SCRIPT = (
    'out=$(systemd-analyze verify --man=no "$1:$2" 2>&1); rc=$?; '
    '[ -n "$out" ] && echo "$out" >&2; '
    '[ "$rc" -eq 0 ] || exit "$rc"; '
    'if echo "$out" | grep -qF "$2"; then exit 1; fi'
)


def sglfleet_unit_validate(unit: str) -> str:
    """Unit name (or its path under /etc/systemd/system) -> the template task's `validate:`."""
    name = str(unit).rsplit("/", 1)[-1]
    if not _UNIT_NAME.match(name):
        raise ValueError(f"sglfleet_unit_validate: {unit!r} is not a systemd unit file name")
    return f"sh -c {shlex.quote(_SCRIPT)} sglfleet-unit-validate %s {shlex.quote(name)}"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"sglfleet_unit_validate": sglfleet_unit_validate}
