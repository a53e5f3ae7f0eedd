"""The crash probe while a group loads: systemd's unit state read over SSH, no playbook.

`ssh` here is a stand-in on PATH (this machine runs no sshd for the lab's hosts; the lab's rollout
tests run the real one): it answers as `systemctl show` would on each host, or exits 255 (ssh's
own status when it cannot connect) for a host that is down.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sglfleet.models import Host, Inventory
from sglfleet.rollout.steps import Target, probe_units, wait_ready

UNIT = "sglang-server@tp.service"
FAKE_SSH = r"""#!/bin/sh
echo "$*" >> "$SGLFLEET_FAKE_SSH/calls"
eval "target=\${$(($# - 1))}"  # ssh_argv ends with [user@]address, then the remote command
case "$target" in
  *down*) echo "ssh: connect to host ${target#*@} port 22: No route to host" >&2; exit 255;;
esac
cat "$SGLFLEET_FAKE_SSH/${target#*@}.show"
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "ssh"
    script.parent.mkdir()
    script.write_text(FAKE_SSH)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SGLFLEET_FAKE_SSH", str(tmp_path))
    return tmp_path


def _inventory(*names: str) -> Inventory:
    hosts = {
        n: Host(
            name=n, ansible_host=n, groups=("sglfleet_gpu_nodes",), vars={"ansible_user": "root"}
        )
        for n in names
    }
    return Inventory(
        path="/x",
        cluster_name="c",
        hosts=hosts,
        models={},
        serving_groups=(),
        router=None,
        sglang_version="0.5.23",
    )


def _target(*hosts: str) -> Target:
    # rank 0's URL refuses connections: the engine never becomes ready here
    return Target("tp", hosts, "http://127.0.0.1:9", "m", True, "regular", None, UNIT)


def _show(folder: Path, host: str, active: str, sub: str, restarts: int) -> None:
    text = f"ActiveState={active}\nSubState={sub}\nNRestarts={restarts}\n"
    (folder / f"{host}.show").write_text(text)


def test_probe_reads_each_members_unit_and_names_the_silent_ones(fake_ssh: Path) -> None:
    _show(fake_ssh, "n1", "active", "running", 0)
    states, lost = probe_units(_inventory("n1", "n2-down"), _target("n1", "n2-down"))
    assert states == {
        "n1": {UNIT: {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}}
    }
    assert lost == ["n2-down"]
    calls = (fake_ssh / "calls").read_text()
    assert "root@n1 systemctl show --property=ActiveState" in calls


def test_an_engine_that_keeps_restarting_fails_the_wait_in_seconds(fake_ssh: Path) -> None:
    _show(fake_ssh, "n1", "activating", "auto-restart", 3)
    readiness = wait_ready(_inventory("n1"), _target("n1"), 60, probe_after_s=0)
    assert not readiness.ok and readiness.seconds < 10
    assert readiness.detail.startswith("engine exited: n1: sglang-server@tp.service")


def test_a_member_that_does_not_answer_is_unreachable(fake_ssh: Path) -> None:
    readiness = wait_ready(_inventory("n1-down"), _target("n1-down"), 60, probe_after_s=0)
    assert not readiness.ok and readiness.detail == "unreachable: n1-down"
