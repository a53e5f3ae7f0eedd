"""Plant canary secrets in a lab inventory, converge, and look for them everywhere they must not be.

The API key may live only in each serving node's server-args.yaml (0640 root:sglang) and the
router's api-key file (0640 root:sglang-router); the hub token (unused by the lab's mirrored model)
nowhere on the nodes. Searched: every file on every node, every process's command line and
environment, the journal, the controller's run artifacts and facts, `sglfleet up` output,
`sglfleet plan --json` output, and git. The canaries are made at run time and reach the nodes'
search tools on stdin only, so no search process carries them in its own argv.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, run_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Runs on a node with the canaries on stdin: prints every place that holds one.
NODE_SEARCH = r"""
import os, subprocess, sys
canaries = [c.encode() for c in sys.stdin.read().split()]
me = str(os.getpid())
def hit(data):
    return any(c in data for c in canaries)
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == me:
        continue
    for kind in ("cmdline", "environ"):
        try:
            with open(f"/proc/{pid}/{kind}", "rb") as handle:
                if hit(handle.read()):
                    print(f"proc {pid} {kind}")
        except OSError:
            pass
journal = subprocess.run(["journalctl", "-o", "cat", "--no-pager"], capture_output=True).stdout
if hit(journal):
    print("journal")
skip = ("/proc", "/sys", "/dev")
for top, dirs, files in os.walk("/"):
    if top.startswith(skip):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(top, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                if hit(handle.read()):
                    print(f"file {path}")
        except OSError:
            pass
"""


# The plays that handle the secrets, through sglfleet's own runner (artifacts under runs/).
SCOPED_CONVERGE = """
import sys
from sglfleet.runner import run_playbook
rc = 0
for playbook in ("playbooks/storage.yml", "playbooks/firewall.yml", "playbooks/serving.yml"):
    result = run_playbook(playbook, sys.argv[1])
    print(playbook, result.rc, result.state.recap)
    rc = rc or result.rc
sys.exit(rc)
"""


def node_hits(container: str, canaries: list[str]) -> list[str]:
    proc = subprocess.run(
        ["podman", "exec", "-i", container, "python3", "-c", NODE_SEARCH],
        input=" ".join(canaries),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")[:-1]


def stat(container: str, path: str) -> str:
    proc = subprocess.run(
        ["podman", "exec", container, "stat", "-c", "%a %U:%G", path],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else f"missing ({proc.stderr.strip()})"


def files_holding(root: Path, canaries: list[str], exclude: set[Path]) -> list[str]:
    found = []
    needles = [c.encode() for c in canaries]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path in exclude:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if any(n in data for n in needles):
            found.append(str(path))
    return found


def test_canary_secrets_stay_where_they_belong(lab: Lab) -> None:
    # The session lab's API key is random and its hub token a planted canary (conftest.py): both
    # went through the full `sglfleet up` that built the lab.
    env = lab.env
    name = lab.name
    home = lab.home
    inventory = lab.inventory
    api_key, hub_token = lab.api_key, lab.hub_token
    secrets_file = inventory / "group_vars" / "all" / "secrets.yml"
    canaries = [api_key, hub_token]
    up = lab.first_up
    # The playbooks that handle the secrets again (storage: the hub token; firewall; serving).
    scoped = subprocess.run(
        [sys.executable, "-c", SCOPED_CONVERGE, str(inventory)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    plan = run_cli(env, "plan", "-i", str(inventory), "--json")
    assert plan.returncode == 0, plan.stderr

    leaks: list[str] = []
    for label, text in (
        ("sglfleet up stdout", up.stdout),
        ("sglfleet up stderr", up.stderr),
        ("storage/firewall/serving stdout", scoped.stdout),
        ("storage/firewall/serving stderr", scoped.stderr),
        ("sglfleet plan --json", plan.stdout + plan.stderr),
    ):
        if any(c in text for c in canaries):
            leaks.append(label)
    # Controller: run artifacts, fact cache and lab state; the inventory's secrets file is the
    # one place meant to hold them there.
    leaks += [f"controller {p}" for p in files_holding(home, canaries, {secrets_file})]
    grep = subprocess.run(
        ["git", "grep", "-l", "-F", "-f", "-"],
        input="\n".join(canaries),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert grep.returncode in (0, 1), grep.stderr
    leaks += [f"git {p}" for p in grep.stdout.split()]

    allowed = {
        f"{name}-1": {"file /etc/sglfleet/tp/server-args.yaml"},
        f"{name}-2": {"file /etc/sglfleet/tp/server-args.yaml"},
        f"{name}-3": {
            "file /etc/sglfleet/replica/server-args.yaml",
            "file /etc/sglfleet/router/api-key",
        },
    }
    found: dict[str, set[str]] = {}
    kept_copies: list[tuple[str, str]] = []
    for container, expected in allowed.items():
        hits = set(node_hits(container, canaries))
        # Backups (`backup: true`) and rollout snapshots of an allowed file sit beside it, in the
        # same 0750 directory; they must keep its mode and owner (checked below).
        copies = {
            h
            for h in hits - expected
            if any(
                h.startswith(f"{e}.") or h.startswith(e.rsplit("/", 1)[0] + "/rollback/")
                for e in expected
            )
        }
        kept_copies += [(container, h.removeprefix("file ")) for h in copies]
        found[container] = hits - copies
        leaks += [f"{container}: {h}" for h in sorted(hits - expected - copies)]
        # The hub token is unused by the lab (mirrored model): it may be nowhere on a node.
        token_hits = node_hits(container, [hub_token])
        leaks += [f"{container}: hub token in {h}" for h in token_hits]

    assert not leaks, "canary secrets leaked:\n" + "\n".join(leaks)
    assert scoped.returncode == 0, scoped.stdout[-4000:] + scoped.stderr[-2000:]
    for container, expected in allowed.items():
        assert found[container] == expected, (container, found[container])

    modes = {
        (f"{name}-1", "/etc/sglfleet/tp/server-args.yaml"): "640 root:sglang",
        (f"{name}-2", "/etc/sglfleet/tp/server-args.yaml"): "640 root:sglang",
        (f"{name}-3", "/etc/sglfleet/replica/server-args.yaml"): "640 root:sglang",
        (f"{name}-3", "/etc/sglfleet/router/api-key"): "640 root:sglang-router",
        (f"{name}-1", "/etc/sglfleet/tp"): "750 root:sglang",
        (f"{name}-3", "/etc/sglfleet/router"): "750 root:sglang-router",
    }
    for (container, path), expected_mode in modes.items():
        assert stat(container, path) == expected_mode, (container, path)
    for container, path in kept_copies:
        assert stat(container, path).split()[0] in ("640", "600"), (container, path)

    # Exposure of the hardened units (recorded in docs/security.md); must stay below "EXPOSED".
    for container, unit in (
        (f"{name}-1", "sglang-server@tp.service"),
        (f"{name}-3", "sglang-router.service"),
    ):
        report = subprocess.run(
            ["podman", "exec", container, "systemd-analyze", "security", "--no-pager", unit],
            capture_output=True,
            text=True,
            check=False,
        )
        (home / f"systemd-analyze-{unit}.txt").write_text(report.stdout)
        print(f"== {unit}\n{report.stdout}")
        overall = [line for line in report.stdout.splitlines() if "Overall exposure level" in line]
        assert overall, report.stderr
        score = float(overall[0].split(":", 1)[1].split()[0])
        assert score < 7.0, overall[0]
    # Last, so that the searches above report even while another play of site.yml fails.
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-2000:]
