"""sglfleet runs Ansible however it is installed, and says why when Ansible did not run.

The CLI is started by its absolute path with a bare environment (no venv on PATH), as pipx, a
systemd timer, a cron line or a CI job would run it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sglfleet.errors import InventoryError, SglfleetError
from sglfleet.runner import RunResult, ansible, run_playbook
from sglfleet.runner.ansible import redact_secrets
from sglfleet.ui.render import print_run_failure

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"  # hosts at 192.0.2.31-34 (TEST-NET)
ENTRY_POINT = Path(sys.executable).with_name("sglfleet")


def test_the_cli_by_its_path_without_its_venv_on_path_reaches_the_hosts(tmp_path: Path) -> None:
    inventory = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inventory)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "SGLFLEET_HOME": str(tmp_path / "h")}
    proc = subprocess.run(
        [str(ENTRY_POINT), "up", "-i", str(inventory), "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "exit code 127" not in out and "not found" not in out, out[-3000:]
    # Ansible ran and tried every host: each is named with why it could not be reached.
    for host, address in (("qwen-1", "192.0.2.31"), ("qwen-4", "192.0.2.34")):
        assert host in out and address in out, out[-3000:]
    assert "unreachable" in out


def test_a_run_that_stops_before_any_task_says_what_ansible_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "300")
    result = run_playbook("playbooks/no-such-playbook.yml", EXAMPLE)
    assert result.rc != 0 and result.failed_before_any_task
    assert "no-such-playbook.yml" in result.early_output
    print_run_failure("no-such-playbook.yml", result)
    err = capsys.readouterr().err
    assert "stopped before its first task" in err
    assert "no-such-playbook.yml" in err.split("stopped before its first task", 1)[1]
    assert "fix the failures above" not in err


def test_what_ansible_quotes_before_a_task_hides_secret_values() -> None:
    quoted = "sglfleet_api_key: sk-live-123\n  hf_token = 'hf_abc'\nport: 8000"
    shown = redact_secrets(quoted)
    assert "sk-live-123" not in shown and "hf_abc" not in shown
    assert "sglfleet_api_key: <redacted>" in shown and "port: 8000" in shown


def _stops_before_any_task(
    playbook: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[RunResult, str]:
    monkeypatch.setenv("SGLFLEET_HOME", str(playbook.parent / "home"))
    monkeypatch.setenv("COLUMNS", "300")
    result = run_playbook(str(playbook), EXAMPLE)
    assert result.rc != 0 and result.failed_before_any_task
    print_run_failure(playbook.name, result)
    err = capsys.readouterr().err
    assert "stopped before its first task" in err and "fix the failures above" not in err
    return result, err


def test_a_syntax_error_is_named_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    playbook = tmp_path / "broken.yml"
    playbook.write_text("- name: Broken\n  hosts: all\n  tasks:\n    - name: x\n      debug: [\n")
    result, err = _stops_before_any_task(playbook, monkeypatch, capsys)
    assert re.search(r"broken\.yml:\d+", result.early_output), err
    assert "\x1b[" not in result.early_output  # Ansible's colours are stripped


def test_a_missing_collection_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    playbook = tmp_path / "collection.yml"
    playbook.write_text(
        "- name: Needs a collection\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Use it\n      sglfleet_missing.collection.module: {}\n"
    )
    result, err = _stops_before_any_task(playbook, monkeypatch, capsys)
    assert "sglfleet_missing.collection.module" in result.early_output, err


def test_an_unreadable_ssh_key_is_refused_before_ansible_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path / "home"))
    inventory = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inventory)
    hosts = inventory / "hosts.yml"
    hosts.write_text(
        hosts.read_text().replace(
            "qwen-2:", "qwen-2:\n          ansible_ssh_private_key_file: /nonexistent/id_ed25519", 1
        )
    )
    with pytest.raises(InventoryError) as raised:
        run_playbook("site.yml", inventory)
    (problem,) = raised.value.problems
    assert (problem.host, problem.variable) == ("qwen-2", "ansible_ssh_private_key_file")
    assert "/nonexistent/id_ed25519" in problem.message
    assert not (tmp_path / "home" / "runs").exists()  # no run was started


def test_no_ansible_anywhere_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(ansible, "ansible_bin_dir", lambda: tmp_path)
    with pytest.raises(SglfleetError) as raised:
        run_playbook("site.yml", EXAMPLE)
    assert "ansible-playbook is not installed" in raised.value.message
    assert "pipx install" in raised.value.hint
