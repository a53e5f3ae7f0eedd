"""The reboot gate: every node reports at once; only the nodes to reboot now enter the serial play.

The `serial: 1` reboot plays of node_stack.yml and fabric.yml take as hosts the nodes that
`nvidia_driver`'s `reboot_pending` entry point found due (markers, reboots allowed, a real node).
Before issue 15 every GPU node went through them one batch each, so a run that rebooted nothing
still paid a play batch per node. These tests run the real entry point and the plays' own `hosts:`
expression (read from the playbooks) with ansible-playbook on local connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
GATED_PLAYBOOKS = ("playbooks/node_stack.yml", "playbooks/fabric.yml")


def _plays(playbook: str) -> list[dict[str, Any]]:
    plays: list[dict[str, Any]] = yaml.safe_load((ROOT / playbook).read_text())
    return plays


def _reboot_play_index(plays: list[dict[str, Any]]) -> int:
    serial = [i for i, play in enumerate(plays) if play.get("serial") == 1]
    assert len(serial) == 1, f"one serial play expected, found {len(serial)}"
    return serial[0]


@pytest.mark.parametrize("playbook", GATED_PLAYBOOKS)
def test_the_serial_reboot_play_follows_a_parallel_play_that_finds_the_nodes(playbook: str) -> None:
    plays = _plays(playbook)
    index = _reboot_play_index(plays)
    finder, reboot = plays[index - 1], plays[index]
    assert finder["hosts"] == "sglfleet_gpu_nodes"
    assert "serial" not in finder
    assert finder["tags"] == reboot["tags"], "a --tags run must select both plays or neither"
    imported = finder["tasks"][0]["ansible.builtin.import_role"]
    assert imported == {"name": "nvidia_driver", "tasks_from": "reboot_pending.yml"}
    assert "nvidia_driver_reboot_due" in reboot["hosts"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="False",
        # The sglfleet plan is not needed here (an inventory without sglfleet's groups).
        ANSIBLE_VARS_ENABLED="host_group_vars",
    )
    return env


def _run_gate(tmp_path: Path, playbook: str, allowed: bool) -> str:
    """Three local nodes: `sim` (simulated, markers), `real` (markers), `clean` (no marker)."""
    hosts = {"sim": (True, 2), "real": (False, 1), "clean": (False, 0)}
    inventory: dict[str, Any] = {"sglfleet_gpu_nodes": {"hosts": {}}}
    for name, (simulated, markers) in hosts.items():
        marker_dir = tmp_path / name
        marker_dir.mkdir()
        for i in range(markers):
            (marker_dir / f"reason{i}").write_text(f"{name} reason {i}\n")
        inventory["sglfleet_gpu_nodes"]["hosts"][name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "sglfleet_simulated_gpus": simulated,
            "nvidia_driver_reboot_marker_dir": str(marker_dir),
        }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    plays = _plays(playbook)
    index = _reboot_play_index(plays)
    finder = dict(plays[index - 1], become=False)
    # The real reboot play's hosts, with a task that says who entered it instead of rebooting.
    entered = {
        "name": "Who entered the reboot play",
        "hosts": plays[index]["hosts"],
        "gather_facts": False,
        "serial": 1,
        "tasks": [{"ansible.builtin.debug": {"msg": "ENTERED {{ inventory_hostname }}"}}],
    }
    (tmp_path / "gate.yml").write_text(yaml.safe_dump([finder, entered], sort_keys=False))
    run = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.yml"),
            str(tmp_path / "gate.yml"),
            "-e",
            f"nvidia_driver_reboot_allowed={str(allowed).lower()}",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # One line per message, however the callback wraps it.
    return " ".join(run.stdout.split())


@pytest.mark.parametrize("playbook", GATED_PLAYBOOKS)
def test_only_a_real_node_allowed_to_reboot_enters_the_serial_play(
    tmp_path: Path, playbook: str
) -> None:
    out = _run_gate(tmp_path, playbook, allowed=True)
    assert "ENTERED real" in out
    assert "ENTERED sim" not in out and "ENTERED clean" not in out
    assert "REBOOT PENDING on sim: sim reason 0; sim reason 1. Simulated host" in out
    assert "REBOOT PENDING on real" not in out and "REBOOT PENDING on clean" not in out


@pytest.mark.parametrize("playbook", GATED_PLAYBOOKS)
def test_without_permission_every_pending_node_is_reported_and_none_enters(
    tmp_path: Path, playbook: str
) -> None:
    out = _run_gate(tmp_path, playbook, allowed=False)
    assert "ENTERED" not in out.replace("ENTERED {{", "")
    assert "skipping: no hosts matched" in out
    assert (
        "REBOOT PENDING on real: real reason 0. Not rebooted because nvidia_driver_reboot_allowed"
        in out
    )
    assert "REBOOT PENDING on sim" in out
    assert "REBOOT PENDING on clean" not in out
