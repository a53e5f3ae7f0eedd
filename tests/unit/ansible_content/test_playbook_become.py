"""Every play that changes a host escalates (issue 13 item 10): the example inventories connect as a
sudo user, and a play without `become: true` fails there (or, worse, half-works)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = [*sorted((ROOT / "playbooks").glob("*.yml")), ROOT / "site.yml"]

# Modules that only read the host (or only touch Ansible's own state).
READ_ONLY_MODULES = {
    "assert", "debug", "fail", "set_fact", "set_stats", "slurp", "stat", "setup", "gather_facts",
    "meta", "add_host", "group_by", "include_vars", "service_facts", "package_facts", "find",
    "getent", "wait_for", "wait_for_connection", "pause", "fetch",
}  # fmt: skip
# Probes: read-only when they say so (changed_when: false).
COMMAND_MODULES = {"command", "shell", "raw", "script"}
SERVICE_MODULES = {"systemd_service", "systemd", "service"}
SERVICE_CHANGES = {"state", "enabled", "masked", "daemon_reload", "daemon_reexec"}
# Plays that escalate on purpose nowhere, each with why it needs no root.
UNESCALATED_ON_PURPOSE = {
    "Node check | What the node stack would do, changing nothing": (
        "changes nothing by design: probes and the nvidia_driver role's detect.yml"
    ),
}
# Plays that change nothing but must still run as root: later plays use their facts and reads.
ESCALATED_READERS = {"Preflight | Reach every node"}
TASK_KEYWORDS = {
    "name", "register", "when", "changed_when", "failed_when", "check_mode", "become",
    "become_user", "delegate_to", "run_once", "tags", "vars", "loop", "loop_control", "notify",
    "no_log", "ignore_errors", "until", "retries", "delay", "environment", "args", "listen",
    "any_errors_fatal", "throttle", "timeout", "local_action", "delegate_facts", "diff",
}  # fmt: skip


def _module(task: dict[str, Any]) -> tuple[str, Any]:
    for key, value in task.items():
        if key not in TASK_KEYWORDS and key not in ("block", "rescue", "always"):
            return key.rsplit(".", 1)[-1], value
    return "", None


def _tasks(items: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for task in items or []:
        if any(k in task for k in ("block", "rescue", "always")):
            for key in ("block", "rescue", "always"):
                yield from _tasks(task.get(key))
        else:
            yield task


def changes_host(task: dict[str, Any]) -> bool:
    """Whether a task may change the managed host (not the controller)."""
    if task.get("delegate_to") in ("localhost", "127.0.0.1") or "local_action" in task:
        return False
    if task.get("become") is False:
        return False
    module, args = _module(task)
    if module in READ_ONLY_MODULES:
        return False
    if module in COMMAND_MODULES:
        return task.get("changed_when") is not False
    if module in SERVICE_MODULES:
        return isinstance(args, dict) and bool(SERVICE_CHANGES & set(args))
    if module == "uri":
        return str((args or {}).get("method", "GET")).upper() != "GET"
    return True


def plays() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in PLAYBOOKS:
        for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if "hosts" in play:
                yield f"{path.relative_to(ROOT)}: {play.get('name')}", play


def host_changing(play: dict[str, Any]) -> list[str]:
    if str(play["hosts"]) in ("localhost", "127.0.0.1"):
        return []
    reasons = [f"role {r if isinstance(r, str) else r.get('role')}" for r in play.get("roles", [])]
    for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
        reasons += [
            f"task {t.get('name') or _module(t)[0]}"
            for t in _tasks(play.get(key))
            if changes_host(t)
        ]
    return reasons


@pytest.mark.parametrize(("where", "play"), list(plays()), ids=lambda x: str(x)[:80])
def test_a_play_that_changes_hosts_escalates(where: str, play: dict[str, Any]) -> None:
    reasons = host_changing(play)
    if play.get("name") in UNESCALATED_ON_PURPOSE:
        assert play.get("become") is False, where
        return
    if reasons or play.get("name") in ESCALATED_READERS:
        assert play.get("become") is True, (
            f"{where} changes hosts ({', '.join(reasons[:3]) or 'facts for later plays'})"
            " but does not escalate: add `become: true` to the play"
        )


def test_the_classifier_sees_a_change() -> None:
    play = {
        "hosts": "sglfleet_gpu_nodes",
        "tasks": [
            {"name": "probe", "ansible.builtin.command": "id", "changed_when": False},
            {"name": "read", "ansible.builtin.systemd_service": {"name": "x"}},
            {"name": "write", "ansible.builtin.copy": {"dest": "/etc/x"}},
            {"name": "here", "ansible.builtin.copy": {"dest": "/x"}, "delegate_to": "localhost"},
        ],
    }
    assert host_changing(play) == ["task write"]
    assert host_changing({"hosts": "all", "roles": [{"role": "firewall"}]}) == ["role firewall"]


def test_the_issue_playbooks_escalate() -> None:
    named = {"fabric.yml", "storage.yml", "firewall.yml", "serving.yml", "preflight.yml"}
    for where, play in plays():
        if where.split(":")[0].split("/")[-1] in named and host_changing(play):
            assert play.get("become") is True, where
