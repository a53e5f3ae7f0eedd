"""plugins/callback/sglfleet_gc.py: the workers Ansible forks inherit a frozen heap.

A task's arguments are templated in the forked worker, so a filter that returns
`gc.get_freeze_count()` there shows what the worker's garbage collections will skip: the objects
the main process froze before forking it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

FILTER = """
import gc


def frozen(_value):
    return gc.get_freeze_count()


class FilterModule:
    def filters(self):
        return {"frozen": frozen}
"""

PLAYBOOK = """
- name: Two plays, so that the play-start collection runs twice
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Report what this task's worker inherited frozen
      ansible.builtin.debug:
        msg: "FROZEN={{ 0 | frozen }}"
- name: Second play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Report again
      ansible.builtin.debug:
        msg: "FROZEN={{ 0 | frozen }}"
"""


def _frozen_counts(tmp_path: Path, enabled: str) -> list[int]:
    filters = tmp_path / "filters"
    filters.mkdir(exist_ok=True)
    (filters / "frozen.py").write_text(FILTER)
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"),
        ANSIBLE_FILTER_PLUGINS=str(filters),
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_STDOUT_CALLBACK="json",
        SGLFLEET_GC_FREEZE=enabled,
    )
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    plays = json.loads(run.stdout)["plays"]
    messages = [task["hosts"]["localhost"]["msg"] for play in plays for task in play["tasks"]]
    return [int(m.removeprefix("FROZEN=")) for m in messages]


def test_ansible_cfg_enables_the_callback() -> None:
    config = (ROOT / "ansible.cfg").read_text()
    assert "callbacks_enabled = sglfleet_gc, sglfleet_changes" in config
    assert "callback_plugins = ./plugins/callback" in config


@pytest.mark.parametrize(("enabled", "frozen"), [("1", True), ("0", False)])
def test_workers_inherit_a_frozen_heap_unless_turned_off(
    tmp_path: Path, enabled: str, frozen: bool
) -> None:
    counts = _frozen_counts(tmp_path, enabled)
    assert len(counts) == 2
    if frozen:
        # Ansible's main process holds tens of thousands of objects by the first task.
        assert all(count > 10_000 for count in counts), counts
    else:
        assert counts == [0, 0]
