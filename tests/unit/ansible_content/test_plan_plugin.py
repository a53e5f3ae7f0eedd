"""The sglfleet_plan vars plugin: Ansible sees the plan Python computes, planned once per run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.host_plan import inventory_plans

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())
BIN = Path(sys.executable).parent
PLANNER_FILTERS = re.compile(
    r"inventory_dir\s*\|\s*sglfleet_|sglfleet_(node_launch|router_workers|monitoring_targets"
    r"|monitoring_router_endpoint|inventory_problems|firewall_rules)\b"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="False",
    )
    env.pop("SGLFLEET_INVENTORY_DIR", None)
    env.update(extra)
    return env


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _plain(value: Any) -> Any:
    """ansible-inventory marks vars plugin strings unsafe (never templated): unwrap the marker."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_ansible_inventory_shows_the_python_plan_for_every_host(example: Path) -> None:
    listed = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(example / "hosts.yml"), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
        cwd=ROOT,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    planned = inventory_plans(example)
    assert planned.problems == ()
    assert set(hostvars) == set(planned.hosts)
    for host, variables in hostvars.items():
        assert _plain(variables["sglfleet_plan"]) == _jsonable(planned.for_host(host)), host
        # No secret in the plan: the API key reaches hosts through Ansible's own variables.
        assert "api-key" not in json.dumps(variables["sglfleet_plan"]).lower()


PLAYBOOK = """
- name: Read the plan the way the roles do, three tasks per host
  hosts: sglfleet_gpu_nodes
  gather_facts: false
  connection: local
  vars:
    launch: "{{ sglfleet_plan.launch }}"
  tasks:
    - name: Group
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} {{ launch.group }} {{ launch.node_rank }}"
    - name: Problems
      ansible.builtin.assert:
        that: sglfleet_plan.problems | length == 0
    - name: Run control seen by the plan too
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} {{ sglfleet_plan.inventory_dir }}"
"""


def test_a_run_plans_once_and_every_host_reads_its_part(tmp_path: Path) -> None:
    example = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"
    playbook = tmp_path / "read_plan.yml"
    playbook.write_text(PLAYBOOK)
    run = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(example / "hosts.yml"),
            str(playbook),
            "-vvv",
            "-e",
            "sglfleet_rollout_batch=1",
        ],
        capture_output=True,
        text=True,
        env=_env(ANSIBLE_FORKS="4"),
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    planned_lines = [line for line in run.stdout.splitlines() if "sglfleet_plan: planned" in line]
    assert len(planned_lines) == 1, planned_lines
    assert "4 hosts, 0 problems" in planned_lines[0]
    for index in range(4):
        assert f"qwen-{index + 1} qwen-{index} 0" in run.stdout


def test_a_broken_inventory_fails_the_preflight_play_with_every_problem(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    source = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"
    inventory.mkdir()
    for path in source.rglob("*"):
        target = inventory / path.relative_to(source)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(path.read_bytes())
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"]["children"]["sglfleet_gpu_nodes"]["hosts"]["qwen-2"]["sglfleet_gpu_count"] = "x"
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    run = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory / "hosts.yml"),
            str(ROOT / "playbooks" / "preflight.yml"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    assert run.returncode != 0
    assert "host qwen-2" in run.stdout and "sglfleet_gpu_count" in run.stdout
    assert "fix:" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_no_playbook_or_role_calls_a_planner_filter() -> None:
    offenders = []
    for base in ("playbooks", "roles", "site.yml", "molecule"):
        paths = [ROOT / base] if (ROOT / base).is_file() else (ROOT / base).rglob("*")
        for path in paths:
            if path.suffix not in (".yml", ".yaml", ".j2"):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PLANNER_FILTERS.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    for plugin in (ROOT / "plugins" / "filter").glob("*.py"):
        text = plugin.read_text()
        assert "load_inventory" not in text and "topology import" not in text, plugin.name


def test_a_gpu_node_outside_every_group_still_gets_the_planned_nccl_tuning() -> None:
    planned = inventory_plans(ROOT / "tests" / "fixtures" / "device-inventory" / "h200x2")
    (host,) = planned.hosts.values()
    assert host["launch"] is None
    assert host["nccl_env"]["NCCL_IB_TIMEOUT"] == "22"
    serving = inventory_plans(ROOT / "inventories" / "examples" / "deepseek-r1-2x8-h100")
    for part in serving.hosts.values():
        if part["launch"]:
            assert part["nccl_env"] == part["launch"]["nccl_env"]
