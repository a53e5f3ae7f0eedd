"""`sglfleet doctor`: the controller's readiness, one row per item with its fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sglfleet import doctor

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"
VAULTED = """!vault |
  $ANSIBLE_VAULT;1.1;AES256
  3661346231386364383331303966363232316433376361323363373562336566
"""


def _by_item(items: list[doctor.Item]) -> dict[str, doctor.Item]:
    return {i.item: i for i in items}


def test_this_controller_is_ready(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # what scripts/setup.sh installs is every required item
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path))
    items = doctor.diagnose()
    required = [i for i in items if not i.item.startswith(("lab:", "SGLang parser"))]
    assert [i for i in required if i.status != "ok"] == []
    assert {"ansible-playbook", "ansible-runner", "ansible.posix", "ssh client"} <= {
        i.item for i in required
    }


def test_missing_ansible_is_a_failure_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "ansible_bin_dir", lambda: Path("/nonexistent"))
    monkeypatch.setenv("PATH", "/nonexistent")
    item = doctor.ansible_item()
    assert item.status == "fail" and "pipx install" in item.fix


def test_an_unreadable_key_and_a_vault_without_password_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inventory = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"].setdefault("vars", {})["ansible_ssh_private_key_file"] = str(tmp_path / "no-key")
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inventory / "group_vars" / "all" / "secret.yml").write_text(f"sglfleet_api_key: {VAULTED}")
    items = _by_item(doctor.inventory_items(inventory))
    assert items["inventory"].status == "ok"
    key = items["ssh key no-key"]
    assert key.status == "fail" and "qwen-1" in key.observed
    assert items["vault password"].status == "fail"
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in items["vault password"].fix
    password = tmp_path / "pw"
    password.write_text("x\n")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    assert _by_item(doctor.inventory_items(inventory))["vault password"].status == "ok"


def test_the_cli_exits_non_zero_and_says_which_item(tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inventory)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"].setdefault("vars", {})["ansible_ssh_private_key_file"] = "/nonexistent/id"
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    proc = subprocess.run(
        [sys.executable, "-m", "sglfleet", "doctor", "-i", str(inventory), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SGLFLEET_HOME": str(tmp_path)},
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)
    assert not found["ready"]
    failed = [i for i in found["items"] if i["status"] == "fail"]
    assert [i["item"] for i in failed] == ["ssh key id"], failed
