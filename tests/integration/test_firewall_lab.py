"""The firewall on a real (containerised) lab: members reach each other's dist-init port, others
do not; the API port answers the router host and the controller, not another node.

Runs on the session lab (conftest.py): 3 nodes under a unique name:
lab-1 + lab-2 form the 2-node group `tp` (dist-init 20000, API 30000), lab-3 runs the router and
a single-node replica.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def podman_exec(container: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", container, *argv], capture_output=True, text=True, check=False
    )


def can_connect(container: str, address: str, port: int) -> bool:
    """A TCP connect from inside `container`; a drop shows as a 3 s timeout."""
    probe = f"exec 3<>/dev/tcp/{address}/{port}"
    return podman_exec(container, "timeout", "3", "bash", "-c", probe).returncode == 0


def converge(env: dict[str, str], playbook: str) -> dict[str, object]:
    """Run one playbook through sglfleet's runner against the lab inventory; return its recap."""
    code = (
        "import json, sys\n"
        "from sglfleet.runner import run_playbook\n"
        f"result = run_playbook({playbook!r}, sys.argv[1])\n"
        "print(json.dumps({'rc': result.rc, 'recap': result.state.recap,"
        " 'artifacts': str(result.artifacts)}, default=str))\n"
    )
    inventory = Path(env["SGLFLEET_HOME"]) / "lab" / "inventory"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(inventory)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def address(name: str, index: int) -> str:
    out = subprocess.run(
        [
            "podman",
            "inspect",
            "--format",
            f"{{{{(index .NetworkSettings.Networks {name!r}).IPAddress}}}}".replace("'", '"'),
            f"{name}-{index}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_firewall_fences_group_ports(lab: Lab) -> None:
    # The session lab (conftest.py) was converged with site.yml, the firewall included.
    env = lab.env
    name = lab.name
    first = converge(env, "playbooks/firewall.yml")
    assert first["rc"] == 0, first
    lab1, lab2, lab3 = (f"{name}-{i}" for i in (1, 2, 3))
    ip1 = address(name, 1)

    # Something must listen, or a refused connection would look like a firewall drop (on the
    # session lab the engine already holds both ports; the probes then simply fail to bind).
    for port in (20000, 30000):
        podman_exec(
            lab1, "systemd-run", f"--unit=fwprobe-{port}", "python3", "-m", "http.server", str(port)
        )
    assert podman_exec(lab1, "bash", "-c", "sleep 1; ss -ltn | grep -q ':20000 '").returncode == 0

    # Loopback is never fenced: the listeners are up.
    assert can_connect(lab1, "127.0.0.1", 20000)
    # dist-init: the group member gets in, the non-member (lab-3, even the router host) does not.
    assert can_connect(lab2, ip1, 20000)
    assert not can_connect(lab3, ip1, 20000)
    # API: the router host gets in; another node that is neither router nor client does not.
    assert can_connect(lab3, ip1, 30000)
    assert not can_connect(lab2, ip1, 30000)
    # SSH stays open to everyone (no firewall_ssh_sources), the rule the controller relies on.
    assert can_connect(lab3, ip1, 22)

    # The ruleset is ours only, validated and loaded by the unit.
    ruleset = podman_exec(lab1, "nft", "list", "table", "inet", "sglfleet")
    assert ruleset.returncode == 0
    assert "policy drop" in ruleset.stdout
    assert "20032-20064" in ruleset.stdout  # SGLANG_PORT..+31 and the TCPStore port

    # A second converge reaches every host over SSH through the firewall and changes nothing.
    second = converge(env, "playbooks/firewall.yml")
    assert second["rc"] == 0, second
    recap = second["recap"]
    assert isinstance(recap, dict)
    for host, counts in recap.items():
        assert counts.get("unreachable", 0) == 0, (host, counts)
        assert counts.get("changed", 0) == 0, (host, counts)
