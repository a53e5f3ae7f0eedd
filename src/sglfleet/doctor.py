"""`sglfleet doctor`: is this controller ready, item by item, each with its fix.

Required items (a failure makes `doctor` exit non-zero): Ansible beside the interpreter that runs
sglfleet, ansible-runner, the collections the playbooks use, an ssh client, the project's
playbooks, room for run artifacts; with `-i INV`, the inventory loads and checks, each host's SSH
key is readable and a vault password source exists when the inventory holds vaulted values;
which hosts' SSH host keys are pinned in the inventory's `.sglfleet/known_hosts` (a warning for
those not yet recorded: the next run records them).
Optional items (a warning): podman, runc and debootstrap for the lab, and the SGLang parser
environment the tests check flags against.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from sglfleet import host_keys
from sglfleet.errors import SglfleetError
from sglfleet.inventory import load_inventory
from sglfleet.models import Host
from sglfleet.paths import project_root, sglfleet_home
from sglfleet.runner import ansible_bin_dir

Status = Literal["ok", "warn", "fail"]
COLLECTIONS = ("ansible.posix", "community.general")
MIN_FREE_BYTES = 1 << 30  # a converge's artifacts are a few MB; keep a GB for many runs


@dataclass(frozen=True)
class Item:
    item: str
    status: Status
    observed: str
    fix: str = ""


def _version_line(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if proc.returncode == 0 and text else None


def ansible_item() -> Item:
    playbook = ansible_bin_dir() / "ansible-playbook"
    found = str(playbook) if playbook.is_file() else shutil.which("ansible-playbook")
    line = _version_line([found, "--version"]) if found else None
    if line is None:
        return Item(
            "ansible-playbook",
            "fail",
            f"not beside {sys.executable} nor on PATH",
            "install sglfleet with its dependencies into one environment (pipx install . / "
            "pip install . in a venv)",
        )
    return Item("ansible-playbook", "ok", f"{line} ({found})")


def python_package_item(name: str) -> Item:
    try:
        return Item(name, "ok", metadata.version(name))
    except metadata.PackageNotFoundError:
        return Item(name, "fail", "not installed", f"pip install '{name}' into {sys.prefix}")


def collection_items() -> list[Item]:
    items = []
    for fqcn in COLLECTIONS:
        namespace, name = fqcn.split(".")
        try:
            __import__(f"ansible_collections.{namespace}.{name}")
        except ImportError:
            items.append(
                Item(
                    fqcn,
                    "fail",
                    "not installed",
                    "pip install 'ansible>=12,<13' (it ships the collections) or "
                    f"ansible-galaxy collection install {fqcn}",
                )
            )
            continue
        items.append(Item(fqcn, "ok", "installed"))
    return items


def ssh_item() -> Item:
    found = shutil.which("ssh")
    if found is None:
        return Item("ssh client", "fail", "ssh not on PATH", "apt install openssh-client")
    return Item("ssh client", "ok", found)


def project_item() -> Item:
    root = project_root()
    if (root / "site.yml").is_file() and (root / "roles").is_dir():
        return Item("playbooks", "ok", str(root))
    return Item(
        "playbooks",
        "fail",
        f"no site.yml and roles/ in {root}",
        "run sglfleet from its checkout, or set SGLFLEET_PROJECT to the folder holding site.yml",
    )


def disk_item() -> Item:
    home = sglfleet_home()
    free = shutil.disk_usage(home).free
    observed = f"{free / (1 << 30):.1f} GiB free in {home}"
    if free < MIN_FREE_BYTES:
        return Item("run artifacts", "fail", observed, "free disk space or set SGLFLEET_HOME")
    return Item("run artifacts", "ok", observed)


def lab_items() -> list[Item]:
    items = []
    for tool in ("podman", "runc", "debootstrap"):
        found = shutil.which(tool)
        items.append(
            Item(f"lab: {tool}", "ok", found)
            if found
            else Item(f"lab: {tool}", "warn", "not installed", "bash scripts/setup.sh (lab only)")
        )
    return items


def sglang_parser_item() -> Item:
    python = os.environ.get("SGLFLEET_SGLANG_PYTHON")
    default = project_root() / ".cache" / "sglang-venv" / "bin" / "python"
    candidate = Path(python) if python else default
    if not candidate.is_file():
        return Item(
            "SGLang parser (tests)",
            "warn",
            f"no interpreter at {candidate}",
            "bash scripts/setup.sh --sglang (needed only by the tests that check flags)",
        )
    line = _version_line([str(candidate), "-c", "import sglang; print(sglang.__version__)"])
    if line is None:
        return Item("SGLang parser (tests)", "warn", f"{candidate} cannot import sglang", "")
    return Item("SGLang parser (tests)", "ok", f"sglang {line} ({candidate})")


def inventory_items(inventory: Path) -> list[Item]:
    try:
        inv = load_inventory(inventory)
    except SglfleetError as exc:
        return [Item("inventory", "fail", exc.message, f"sglfleet plan -i {inventory}")]
    items = [Item("inventory", "ok", f"{len(inv.hosts)} hosts in {inventory}")]
    keys: dict[str, list[str]] = {}
    for name, host in inv.hosts.items():
        key = host.vars.get("ansible_ssh_private_key_file")
        if key:
            keys.setdefault(str(key), []).append(name)
    for key, hosts in sorted(keys.items()):
        path = Path(key).expanduser()
        who = ", ".join(hosts[:3]) + (" ..." if len(hosts) > 3 else "")
        if path.is_file() and os.access(path, os.R_OK):
            items.append(Item(f"ssh key {path.name}", "ok", f"{path} ({who})"))
        else:
            items.append(
                Item(
                    f"ssh key {path.name}",
                    "fail",
                    f"{path} is not readable ({who})",
                    "fix ansible_ssh_private_key_file or create the key",
                )
            )
    items.append(host_keys_item(inventory, inv.hosts))
    if _has_vault(inventory):
        source = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or _cfg_vault_file()
        if source:
            items.append(Item("vault password", "ok", f"from {source}"))
        else:
            items.append(
                Item(
                    "vault password",
                    "fail",
                    "the inventory holds vaulted values and no password source is set",
                    "export ANSIBLE_VAULT_PASSWORD_FILE=PATH (a file or an executable script)",
                )
            )
    return items


def host_keys_item(inventory: Path, hosts: dict[str, Host]) -> Item:
    """Which hosts' SSH keys are pinned in the inventory's known_hosts (sglfleet.host_keys)."""
    known_hosts = host_keys.known_hosts_file(inventory)
    over_ssh = {
        name: host
        for name, host in hosts.items()
        if str(host.vars.get("ansible_connection", "ssh")) in ("ssh", "paramiko", "smart")
    }
    own_args = sorted(n for n, h in over_ssh.items() if h.vars.get("ansible_ssh_common_args"))
    missing = sorted(
        name
        for name, host in over_ssh.items()
        if not host_keys.recorded(
            known_hosts, host.ansible_host or name, host.vars.get("ansible_port")
        )
    )
    if own_args:
        return Item(
            "ssh host keys",
            "warn",
            f"{', '.join(own_args[:5])} set ansible_ssh_common_args, which replace sglfleet's "
            "host key pinning",
            f"add `-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new` "
            "to those arguments, or drop them",
        )
    if missing:
        return Item(
            "ssh host keys",
            "warn",
            f"{len(missing)} of {len(over_ssh)} hosts not yet pinned in {known_hosts}: "
            + ", ".join(missing[:5])
            + (" ..." if len(missing) > 5 else ""),
            "recorded on first contact (the next run); or pin them now with ssh-keyscan, "
            "checked out of band",
        )
    return Item("ssh host keys", "ok", f"{len(over_ssh)} hosts pinned in {known_hosts}")


def _has_vault(inventory: Path) -> bool:
    for path in inventory.rglob("*"):
        if (
            path.is_file()
            and path.suffix in (".yml", ".yaml", "")
            and path.stat().st_size < 1 << 22
        ):
            try:
                if "$ANSIBLE_VAULT;" in path.read_text(errors="ignore"):
                    return True
            except OSError:
                continue
    return False


def _cfg_vault_file() -> str | None:
    cfg = project_root() / "ansible.cfg"
    if not cfg.is_file():
        return None
    for line in cfg.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "vault_password_file" and value.strip():
            return value.strip()
    return None


def diagnose(inventory: Path | None = None) -> list[Item]:
    items = [ansible_item(), python_package_item("ansible-runner"), *collection_items()]
    items += [ssh_item(), project_item(), disk_item()]
    if inventory is not None:
        items += inventory_items(inventory)
    items += [*lab_items(), sglang_parser_item()]
    return items


def document(items: list[Item]) -> dict[str, Any]:
    failed = sum(i.status == "fail" for i in items)
    return {"items": [asdict(i) for i in items], "failed": failed, "ready": failed == 0}
