"""SSH host keys pinned per inventory: trust on first use, refuse a changed key.

Every ssh that sglfleet starts (Ansible's, through the runner, and its own plain reads) uses the
inventory's `.sglfleet/known_hosts` with `StrictHostKeyChecking=accept-new`: a host's key is
recorded on first contact and verified on every later one; a changed key stops the connection,
and sglfleet names the host and the fix. The file is kept with the inventory (commit it with the
inventory; Ansible skips dot folders of an inventory directory). The lab writes its nodes' keys
into its own inventory's file from the containers themselves.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from sglfleet.paths import sglfleet_home

KNOWN_HOSTS = Path(".sglfleet") / "known_hosts"

# What ssh prints when the recorded key and the host's differ (OpenSSH 8 and 9).
_CHANGED = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")
_NAMED = re.compile(r"Host key for (\S+) has changed")


def known_hosts_file(inventory_dir: str | Path) -> Path:
    """`<inventory>/.sglfleet/known_hosts`; for an inventory folder sglfleet cannot write (a
    read-only checkout), a file of its own under ~/.sglfleet/known_hosts/, named for the folder."""
    inventory = Path(inventory_dir).expanduser().resolve()
    beside = inventory / KNOWN_HOSTS
    if beside.parent.is_dir() or os.access(inventory, os.W_OK) or not inventory.is_dir():
        return beside
    digest = hashlib.sha256(str(inventory).encode()).hexdigest()[:12]
    return sglfleet_home() / "known_hosts" / f"{inventory.name}-{digest}"


def ssh_options(known_hosts: Path) -> list[str]:
    """ssh options that pin host keys in `known_hosts` (the first value of an option wins)."""
    return [
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "HashKnownHosts=no",
    ]


def prepare(known_hosts: Path) -> None:
    """The folder ssh records keys into (ssh does not create it)."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def entry(address: str, port: int | str | None = None) -> str:
    """How known_hosts names a host: `address`, or `[address]:port` off port 22."""
    if port in (None, "", 22, "22"):
        return address
    return f"[{address}]:{port}"


def key_changed(message: str) -> bool:
    return any(marker in message for marker in _CHANGED)


def changed_key_fix(host: str, name: str, known_hosts: Path) -> str:
    """The fix for a host whose key differs from the recorded one (`name` as known_hosts has it)."""
    return (
        f"the SSH host key of {host} ({name}) is not the one recorded in {known_hosts}: the host "
        "was reinstalled, or something else answers at its address. Check the new key out of band "
        f"(on the host: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then run "
        f"`ssh-keygen -R '{name}' -f {known_hosts}` and re-run; the new key is recorded on first "
        "contact"
    )


def unreachable_fix(host: str, message: str, known_hosts: Path | None) -> str:
    """What to do about a host ssh could not reach, from what ssh said."""
    if known_hosts is not None and key_changed(message):
        named = _NAMED.search(message)
        return changed_key_fix(host, named.group(1) if named else host, known_hosts)
    return f"check SSH to {host} (ansible_host, ansible_user, key, sudo)"


def recorded(known_hosts: Path, address: str, port: int | str | None = None) -> bool:
    """Whether `known_hosts` holds a key for the host (hashed entries too, via ssh-keygen -F)."""
    if not known_hosts.is_file():
        return False
    found = subprocess.run(
        ["ssh-keygen", "-F", entry(address, port), "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0 and bool(found.stdout.strip())


def replace(known_hosts: Path, address: str, port: int | str | None, keys: list[str]) -> None:
    """Record exactly `keys` ("TYPE BASE64" lines) for the host, dropping what it had."""
    prepare(known_hosts)
    name = entry(address, port)
    kept = []
    if known_hosts.is_file():
        for line in known_hosts.read_text().splitlines():
            first = line.split(" ", 1)[0]
            if line.strip() and name not in first.split(","):
                kept.append(line)
    kept += [f"{name} {key.strip()}" for key in keys if key.strip()]
    known_hosts.write_text("".join(f"{line}\n" for line in kept))
    known_hosts.chmod(0o600)
