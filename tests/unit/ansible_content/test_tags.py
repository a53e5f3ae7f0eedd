"""Every `--tags` selection still reaches every task of the roles it selects (issue 15, "Fewer
per-task costs"): task files guarded by one conditional `include_tasks` are listed by
`ansible-playbook --list-tasks` only as the include itself, so this test expands the includes the
way Ansible's strategy does at run time (`build_parent_block`, `IncludeRole.get_block_list`) and
evaluates each task's tags with Ansible's own `evaluate_tags`. The `when:` of an include is not
evaluated (it depends on the host), so a task counts as reached when its tags select it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
INVENTORY = ROOT / "inventories" / "examples" / "qwen3-8b-4x1" / "hosts.yml"

# A child process: Ansible reads ansible.cfg (roles_path) from the working directory on import.
EXPAND = textwrap.dedent(
    """
    import json, sys
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook import Playbook
    from ansible.playbook.helpers import load_list_of_blocks
    from ansible.playbook.role_include import IncludeRole
    from ansible.playbook.task_include import TaskInclude
    from ansible.inventory.manager import InventoryManager
    from ansible.vars.manager import VariableManager
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([])

    playbook_path, inventory, only, skip = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    only_tags = set(only.split(",")) if only else {"all"}
    skip_tags = set(skip.split(",")) if skip else set()
    context.CLIARGS = ImmutableDict(tags=list(only_tags), skip_tags=list(skip_tags), check=False,
                                    diff=False, start_at_task=None, listtasks=True)
    loader = DataLoader()
    hosts = InventoryManager(loader=loader, sources=[inventory])
    variables = VariableManager(loader=loader, inventory=hosts)
    rows = []

    def walk(blocks, play, dynamic):
        for block in blocks:
            for task in block.block + block.rescue + block.always:
                if hasattr(task, "block"):
                    walk([task], play, dynamic)
                    continue
                role = task._role.get_name() if task._role else ""
                selected = task.evaluate_tags(only_tags, skip_tags, all_vars={})
                rows.append({"play": play.get_name(), "role": role, "task": task.get_name(),
                             "action": task.action, "path": task.get_path(), "dynamic": dynamic,
                             "implicit": bool(task.implicit), "selected": bool(selected)})
                if not selected:
                    continue
                if isinstance(task, IncludeRole):
                    task._parent_role = task._role
                    included, _ = task.get_block_list(
                        play=play, variable_manager=variables, loader=loader
                    )
                    walk(included, play, True)
                elif isinstance(task, TaskInclude) and task.action.endswith("include_tasks"):
                    copy = task.copy(exclude_parent=False)
                    copy.args = dict(task.args)
                    name = copy.args.get("_raw_params") or copy.args.get("file")
                    if task._role:
                        path = task._role._role_path + "/tasks/" + name
                    else:
                        path = str(loader.get_basedir()) + "/" + name
                    included = load_list_of_blocks(
                        loader.load_from_file(path), play=play,
                        parent_block=copy.build_parent_block(), role=task._role,
                        use_handlers=False, loader=loader, variable_manager=variables,
                    )
                    walk(included, play, True)

    playbook = Playbook.load(playbook_path, variable_manager=variables, loader=loader)
    for play in playbook.get_plays():
        walk(play.compile(), play, False)
    print(json.dumps(rows))
    """
)

# `--tags` values of the plays (the CLI passes the user's `--tags` through) and the roles each
# must reach in site.yml; rollout runs `--skip-tags router`.
TAG_ROLES = {
    "node_stack": {"host_tuning", "nvidia_driver", "fabric_manager", "cuda_toolkit", "dcgm"},
    "fabric": {"rdma_network", "nccl_tuning", "nvidia_driver"},  # the driver's detect.yml
    "storage": {"shared_storage", "model_weights"},
    "firewall": {"firewall"},
    "serving": {"sglang_server", "sglang_router"},
    "router": {"sglang_router"},
    "monitoring": {"monitoring", "open_webui"},
    "open_webui": {"open_webui"},
}
ALL_ROLES = sorted({role for roles in TAG_ROLES.values() for role in roles})


def _run_expand(
    playbook: str, tags: str, skip_tags: str, cwd: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", EXPAND, playbook, str(INVENTORY), tags, skip_tags],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(result.stdout.splitlines()[-1])
    return rows


@cache
def expand(playbook: str, tags: str = "", skip_tags: str = "") -> list[dict[str, Any]]:
    env = {**os.environ, "ANSIBLE_HOME": str(ROOT / ".cache" / "ansible")}
    return _run_expand(playbook, tags, skip_tags, ROOT, env)


def role_tasks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Ansible's own tasks (argument-spec check, role-end flush) are tagged `always`: no signal.
    return [
        r
        for r in rows
        if r["role"]
        and not r["implicit"]
        and r["action"] != "ansible.builtin.validate_argument_spec"
    ]


# Task files behind one conditional include_tasks (issue 15), and the tag that must reach them.
GUARDED_FILES = {
    "host_tuning/tasks/kernel_args_changed.yml": "node_stack",
    "nvidia_driver/tasks/headers.yml": "node_stack",
    "nvidia_driver/tasks/verify.yml": "node_stack",
    "nvidia_driver/tasks/reboot_now.yml": "node_stack",
    "shared_storage/tasks/configure.yml": "storage",
    "shared_storage/tasks/server.yml": "storage",
    "shared_storage/tasks/service_units.yml": "storage",
    "firewall/tasks/remove.yml": "firewall",
    "rdma_network/tasks/gpudirect.yml": "fabric",
    "sglang_server/tasks/engines.yml": "serving",
    "sglang_server/tasks/gpu.yml": "serving",
}


@pytest.mark.parametrize(("task_file", "tag"), sorted(GUARDED_FILES.items()))
def test_guarded_file_is_reached_by_its_tag(task_file: str, tag: str) -> None:
    """The expansion follows the include, and `--tags TAG` selects every task of the file."""
    rows = [
        r
        for r in role_tasks(expand("site.yml", tags=tag))
        if r["path"].split(":")[0].endswith(task_file)
    ]
    assert rows, f"{task_file} is not reached from site.yml"
    assert all(r["dynamic"] and r["selected"] for r in rows), rows


@pytest.mark.parametrize("tag", sorted(TAG_ROLES))
def test_tag_reaches_every_task_of_its_roles(tag: str) -> None:
    """`--tags TAG` selects every task (static or behind an include) of each role a play runs,
    or none: roles carry no tags of their own, so within a play a role is all in or all out."""
    rows = role_tasks(expand("site.yml", tags=tag))
    reached_in_play = {(r["play"], r["role"]) for r in rows if r["selected"]}
    missed = [
        f"{r['play']} / {r['task']} ({r['path']})"
        for r in rows
        if (r["play"], r["role"]) in reached_in_play and not r["selected"]
    ]
    assert not missed, f"--tags {tag} no longer reaches:\n" + "\n".join(missed)
    reached = {role for _, role in reached_in_play}
    assert reached == TAG_ROLES[tag], f"--tags {tag} reaches roles {sorted(reached)}"


def test_all_reaches_every_role_task() -> None:
    rows = role_tasks(expand("site.yml"))
    assert {r["role"] for r in rows} >= set(ALL_ROLES)
    assert all(r["selected"] for r in rows), [r["task"] for r in rows if not r["selected"]]


def test_skip_router_keeps_the_servers() -> None:
    """Rollout's `--skip-tags router` leaves every server task and drops every router task."""
    rows = role_tasks(expand("site.yml", skip_tags="router"))
    assert all(r["selected"] for r in rows if r["role"] == "sglang_server")
    assert not any(r["selected"] for r in rows if r["role"] == "sglang_router")


def test_untagged_include_children_are_caught(tmp_path: Path) -> None:
    """The check can fail: a child file behind an include that carries a tag without `apply` is
    not selected by that tag, and the expansion reports it."""
    role = tmp_path / "roles" / "demo" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(
        "- name: Demo\n  ansible.builtin.include_tasks: child.yml\n  tags: [demo]\n"
    )
    (role / "child.yml").write_text(
        "- name: Child | Say hi\n  ansible.builtin.debug:\n    msg: hi\n"
    )
    (tmp_path / "play.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [demo]\n")
    (tmp_path / "ansible.cfg").write_text(f"[defaults]\nroles_path = {tmp_path / 'roles'}\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    expanded = _run_expand(str(tmp_path / "play.yml"), "demo", "", tmp_path, env)
    rows = {r["task"]: r["selected"] for r in role_tasks(expanded)}
    assert rows == {"demo : Demo": True, "demo : Child | Say hi": False}
