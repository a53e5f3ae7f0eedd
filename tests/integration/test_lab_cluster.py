"""The foundation on a real 3-node lab: converge, serve, reconverge with no change, self-heal."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from openai import OpenAI

from tests.integration.conftest import ROOT, Lab

pytestmark = pytest.mark.integration


def test_first_converge_succeeds_on_every_host(lab: Lab) -> None:
    recap = json.loads(lab.first_up.stdout)["recap"]
    assert set(recap) == {"lab-1", "lab-2", "lab-3"}
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values())


def test_chat_completion_through_the_router(lab: Lab) -> None:
    status = lab.wait_ready()
    assert status["endpoint"] == lab.endpoint
    assert {g["name"] for g in status["groups"]} == {"tp", "replica"}
    tp = next(g for g in status["groups"] if g["name"] == "tp")
    assert [(n["host"], n["node_rank"]) for n in tp["nodes"]] == [("lab-1", 0), ("lab-2", 1)]
    client = OpenAI(base_url=lab.endpoint, api_key=lab.api_key, max_retries=3, timeout=60)
    model = client.models.list().data[0].id
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=8
    )
    assert reply.choices[0].message.content
    rejected = OpenAI(base_url=lab.endpoint, api_key="wrong-key", max_retries=0, timeout=30)
    with pytest.raises(Exception, match=r"401|Unauthorized"):
        rejected.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=8
        )


def test_second_up_changes_nothing(lab: Lab) -> None:
    again = lab.sglfleet("up", "-i", str(lab.inventory), "--json", timeout=2400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    recap = json.loads(again.stdout)["recap"]
    changed = {host: counts["changed"] for host, counts in recap.items()}
    assert changed == {"lab-1": 0, "lab-2": 0, "lab-3": 0}


def test_ansible_playbook_check_diff_on_converged_lab(lab: Lab) -> None:
    proc = subprocess.run(
        ["ansible-playbook", "site.yml", "-i", str(lab.inventory), "--check", "--diff"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=lab.env,
        timeout=2400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "failed=0" in proc.stdout
    assert lab.api_key not in proc.stdout


def _unit(lab: Lab, node: str, unit: str, prop: str) -> str:
    return lab.exec(node, "systemctl", "show", "-P", prop, unit).stdout.strip()


def test_killed_member_takes_its_group_down_and_back(lab: Lab) -> None:
    lab.wait_ready()
    unit = "sglang-server@tp.service"
    rank0_pid = _unit(lab, "lab-1", unit, "MainPID")
    member_pid = _unit(lab, "lab-2", unit, "MainPID")
    assert rank0_pid != "0" and member_pid != "0"
    killed = lab.exec("lab-2", "kill", "-9", member_pid)
    assert killed.returncode == 0, killed.stderr
    # No one acts from here: the group must notice, restart together and become ready again.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _unit(lab, "lab-1", unit, "MainPID") not in ("0", rank0_pid):
            break
        time.sleep(1)
    else:
        raise AssertionError("rank 0 kept running after a member died")
    status = lab.wait_ready(timeout=240)
    tp = next(g for g in status["groups"] if g["name"] == "tp")
    assert tp["ready"] and all(n["active"] for n in tp["nodes"])
