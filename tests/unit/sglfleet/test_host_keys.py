"""SSH host keys pinned per inventory (sglfleet.host_keys): file, options, entries, messages.
ssh-keygen is the real one (openssh-client, installed by scripts/setup.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sglfleet import host_keys
from sglfleet.models import Host
from sglfleet.runner.ansible import _envvars
from sglfleet.ssh import ssh_argv

# What OpenSSH 9.2 prints when a pinned key and the host's differ (with accept-new).
CHANGED = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Offending ED25519 key in /inv/.sglfleet/known_hosts:1
Host key for 10.89.0.5 has changed and you have requested strict checking.
Host key verification failed."""


def _public_key(tmp_path: Path, name: str) -> str:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join((tmp_path / f"{name}.pub").read_text().split()[:2])


def test_the_file_lives_with_the_inventory_in_a_folder_ansible_skips(tmp_path: Path) -> None:
    path = host_keys.known_hosts_file(tmp_path / "inv")
    assert path == (tmp_path / "inv" / ".sglfleet" / "known_hosts").resolve()
    assert path.parent.name.startswith(".")  # Ansible ignores dot entries of an inventory dir


def test_entries_name_the_port_off_22() -> None:
    assert host_keys.entry("10.0.0.1") == "10.0.0.1"
    assert host_keys.entry("10.0.0.1", 22) == "10.0.0.1"
    assert host_keys.entry("10.0.0.1", "2222") == "[10.0.0.1]:2222"


def test_replace_pins_exactly_the_given_keys_and_ssh_keygen_finds_them(tmp_path: Path) -> None:
    known = tmp_path / "inv" / ".sglfleet" / "known_hosts"
    first, second = _public_key(tmp_path, "a"), _public_key(tmp_path, "b")
    host_keys.replace(known, "10.0.0.1", None, [first])
    host_keys.replace(known, "10.0.0.2", 2222, [second])
    assert host_keys.recorded(known, "10.0.0.1")
    assert host_keys.recorded(known, "10.0.0.2", 2222)
    assert not host_keys.recorded(known, "10.0.0.2")
    assert not host_keys.recorded(known, "10.0.0.3")
    host_keys.replace(known, "10.0.0.1", None, [second])
    lines = known.read_text().splitlines()
    assert lines == [f"[10.0.0.2]:2222 {second}", f"10.0.0.1 {second}"]
    assert known.stat().st_mode & 0o777 == 0o600


def test_a_changed_key_gets_the_host_and_the_fix() -> None:
    known = Path("/inv/.sglfleet/known_hosts")
    assert host_keys.key_changed(CHANGED)
    fix = host_keys.unreachable_fix("lab-1", CHANGED, known)
    assert "lab-1 (10.89.0.5)" in fix
    assert "ssh-keygen -R '10.89.0.5' -f /inv/.sglfleet/known_hosts" in fix
    other = host_keys.unreachable_fix("lab-1", "ssh: connect to host x port 22: No route", known)
    assert other.startswith("check SSH to lab-1")


def test_every_ssh_sglfleet_starts_pins_keys(tmp_path: Path) -> None:
    known = host_keys.known_hosts_file(tmp_path)
    argv = ssh_argv(Host(name="n1", ansible_host="10.0.0.1"), ["true"], known)
    assert f"UserKnownHostsFile={known}" in argv
    assert "StrictHostKeyChecking=accept-new" in argv
    env = _envvars(tmp_path, known)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert f"UserKnownHostsFile={known}" in env["ANSIBLE_SSH_COMMON_ARGS"]
    assert "StrictHostKeyChecking=accept-new" in env["ANSIBLE_SSH_COMMON_ARGS"]


def test_ansible_cfg_checks_host_keys_for_plain_ansible_runs() -> None:
    text = (Path(__file__).resolve().parents[3] / "ansible.cfg").read_text()
    assert "host_key_checking = True" in text
    assert "StrictHostKeyChecking=accept-new" in text


def test_a_read_only_inventory_gets_a_file_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "inv"
    inventory.mkdir()
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(host_keys.os, "access", lambda path, mode: False)
    path = host_keys.known_hosts_file(inventory)
    assert path.parent == (tmp_path / "home" / "known_hosts").resolve()
    assert path.name.startswith("inv-")
    assert host_keys.known_hosts_file(inventory) == path  # the same file every run
