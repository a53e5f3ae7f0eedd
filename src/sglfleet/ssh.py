"""Commands on nodes over plain SSH, with each host's Ansible connection variables.

For reads that must be quick and cheap on the controller (`sglfleet logs`, the crash probe while a
rollout waits for readiness): one ssh process per host instead of an Ansible run.
"""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sglfleet import host_keys
from sglfleet.models import Host

SSH_UNREACHABLE = 255  # ssh's own exit status when it cannot connect or authenticate


def ssh_argv(host: Host, remote: list[str], known_hosts: Path | None = None) -> list[str]:
    """An ssh command line from the host's Ansible connection variables.

    Host keys are pinned in `known_hosts` (the inventory's, `sglfleet.host_keys`) unless the
    inventory's own ssh arguments say otherwise (the first value ssh reads for an option wins):
    a new host's key is recorded, a changed one refused.
    """
    variables = host.vars
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        if variables.get(key):
            argv += shlex.split(str(variables[key]))
    if known_hosts is not None:
        host_keys.prepare(known_hosts)
        argv += host_keys.ssh_options(known_hosts)
    else:
        argv += ["-o", "StrictHostKeyChecking=accept-new"]
    if variables.get("ansible_ssh_private_key_file"):
        argv += ["-i", str(variables["ansible_ssh_private_key_file"])]
    if variables.get("ansible_port"):
        argv += ["-p", str(variables["ansible_port"])]
    user = variables.get("ansible_user")
    address = host.ansible_host or host.name
    argv.append(f"{user}@{address}" if user else address)
    command = shlex.join(remote)
    if variables.get("ansible_become") and user != "root":
        command = "sudo -n " + command
    return [*argv, command]


@dataclass(frozen=True)
class Reply:
    host: str
    rc: int
    stdout: str
    stderr: str

    @property
    def unreachable(self) -> bool:
        return self.rc == SSH_UNREACHABLE


def run_on(
    hosts: list[Host],
    remote: list[str],
    timeout_s: float = 30.0,
    known_hosts: Path | None = None,
) -> dict[str, Reply]:
    """Run `remote` on every host at once; a host that does not answer in time is unreachable."""

    def one(host: Host) -> Reply:
        try:
            proc = subprocess.run(
                ssh_argv(host, remote, known_hosts),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return Reply(host.name, SSH_UNREACHABLE, "", f"no answer within {timeout_s:.0f}s")
        return Reply(host.name, proc.returncode, proc.stdout, proc.stderr)

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(hosts)), thread_name_prefix="ssh") as pool:
        return {reply.host: reply for reply in pool.map(one, hosts)}
