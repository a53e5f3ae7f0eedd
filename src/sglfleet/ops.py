"""Day-2 operations on serving groups: logs, start/stop/restart, drain/undrain, richer status."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sglfleet import host_keys
from sglfleet.errors import SglfleetError
from sglfleet.paths import sglfleet_home
from sglfleet.rollout.steps import (
    Cluster,
    Progress,
    Target,
    drain,
    failure_text,
    limit_of,
    load_cluster,
    run_ansible,
    unreachable_hosts,
    wait_ready,
)
from sglfleet.ssh import ssh_argv

Write = Callable[[str], None]
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)")

# -- drained groups: remembered so that start/restart do not put a drained group back ----------


def _drained_path() -> Path:
    return sglfleet_home() / "drained.json"


def drained_groups() -> dict[str, dict[str, Any]]:
    path = _drained_path()
    return json.loads(path.read_text()) if path.exists() else {}


def _set_drained(name: str, entry: dict[str, Any] | None) -> None:
    groups = drained_groups()
    if entry is None:
        groups.pop(name, None)
    else:
        groups[name] = entry
    _drained_path().write_text(json.dumps(groups, indent=2) + "\n")


# -- router and drain steps --------------------------------------------------------------------


def _others_serving(cluster: Cluster, targets: list[Target]) -> bool:
    router = cluster.router()
    if router is None:
        return True
    urls = {t.rank0_url.rstrip("/") for t in targets}
    others = [t for t in cluster.targets if t.routed and t not in targets]
    if not others:
        return True
    return any(w.healthy and w.url not in urls for w in router.workers())


def take_out(
    cluster: Cluster, targets: list[Target], drain_timeout_s: float, force: bool, say: Progress
) -> None:
    """Out of the router, then wait until rank 0 has nothing in flight."""
    if not force and not _others_serving(cluster, targets):
        raise SglfleetError(
            "no other group is healthy in the router: this would stop all traffic",
            "bring another group back first, or pass --force to accept the outage",
        )
    router = cluster.router()
    for target in targets:
        if router is not None and target.routed and router.remove(target.rank0_url):
            say(f"[{target.name}] out of the router")
        ok, detail = drain(target, drain_timeout_s)
        say(f"[{target.name}] {'drained' if ok else 'NOT drained'}: {detail}")


def put_back(
    cluster: Cluster, targets: list[Target], ready_timeout_s: float, say: Progress
) -> None:
    """Wait for readiness, then put each group back in the router (unless it is drained)."""
    router = cluster.router()
    drained = drained_groups()
    for target in targets:
        readiness = wait_ready(cluster.inv, target, ready_timeout_s)
        if not readiness.ok:
            raise SglfleetError(
                f"group {target.name} is not ready: {readiness.detail}",
                f"see `sglfleet logs -i {cluster.inventory} --group {target.name}`",
            )
        say(f"[{target.name}] {readiness.detail}")
        if router is not None and target.routed and target.name not in drained:
            router.add(target.rank0_url, target.worker_type, target.bootstrap_port)
            say(f"[{target.name}] back in the router")


def _service(cluster: Cluster, targets: list[Target], action: str, say: Progress) -> None:
    say(f"{action}: {', '.join(t.name for t in targets)} (members together, rank 0 first on stop)")
    result = run_ansible(
        "playbooks/ops_service.yml",
        cluster.inventory,
        limit=limit_of(targets),
        extravars={"sglfleet_ops_action": action},
    )
    lost = unreachable_hosts(result)
    if lost or result.rc != 0:
        raise SglfleetError(
            f"{action} failed: "
            + (f"unreachable: {', '.join(lost)}" if lost else failure_text(result)),
            f"log in {result.artifacts}",
        )


def service(
    inventory: Path,
    action: str,
    groups: list[str] | None,
    *,
    ready_timeout_s: float = 2400.0,
    drain_timeout_s: float = 600.0,
    force: bool = False,
    wait: bool = True,
    say: Progress,
) -> None:
    """`sglfleet start|stop|restart`: stop takes the groups out of the router and drains them
    first; start waits for readiness and puts them back (a drained group stays out)."""
    cluster = load_cluster(inventory)
    targets = cluster.select(groups)
    if action in ("stop", "restart"):
        take_out(cluster, targets, drain_timeout_s, force, say)
    _service(cluster, targets, action, say)
    if action in ("start", "restart") and wait:
        put_back(cluster, targets, ready_timeout_s, say)


def drain_node(
    inventory: Path, host: str, *, drain_timeout_s: float, force: bool, say: Progress
) -> dict[str, Any]:
    """Take the node's serving group out of the router and wait for its in-flight requests."""
    cluster = load_cluster(inventory)
    target = cluster.group_of(host)
    take_out(cluster, [target], drain_timeout_s, force, say)
    entry = {"host": host, "group": target.name, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _set_drained(target.name, entry)
    others = [h for h in target.hosts if h != host]
    if others:
        say(f"note: {host} serves in group {target.name}; {', '.join(others)} left with it")
    return entry


def undrain_node(
    inventory: Path, host: str, *, ready_timeout_s: float, say: Progress
) -> dict[str, Any]:
    """Put the node's group back in the router once it is ready."""
    cluster = load_cluster(inventory)
    target = cluster.group_of(host)
    _set_drained(target.name, None)
    put_back(cluster, [target], ready_timeout_s, say)
    return {"host": host, "group": target.name}


# -- logs --------------------------------------------------------------------------------------


def logs(
    inventory: Path,
    groups: list[str] | None,
    *,
    lines: int = 200,
    since: str | None = None,
    follow: bool = False,
    write: Write,
) -> int:
    """The journal of the groups' units, merged in time order and prefixed by host."""
    cluster = load_cluster(inventory)
    targets = cluster.select(groups)
    width = max(len(h) for t in targets for h in t.hosts)
    known_hosts = host_keys.known_hosts_file(cluster.inv.path)
    commands = []
    for target in targets:
        for host in target.hosts:
            remote = ["journalctl", "-u", target.unit, "-o", "short-iso-precise", "--no-pager"]
            remote += ["-n", str(lines)]
            if since:
                remote += ["--since", since]
            if follow:
                remote.append("-f")
            commands.append((host, ssh_argv(cluster.inv.hosts[host], remote, known_hosts)))
    if follow:
        return _follow(commands, width, write)
    merged: list[tuple[str, int, str, str]] = []
    failures = 0
    for order, (host, argv) in enumerate(commands):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            failures += 1
            write(f"{host:<{width}} | (journal unavailable: {proc.stderr.strip()[-200:]})")
            continue
        for line in proc.stdout.splitlines():
            match = _TIMESTAMP.match(line)
            merged.append((match.group(1) if match else "", order, host, line))
    merged.sort(key=lambda item: (item[0], item[1]))
    for _stamp, _order, host, line in merged:
        write(f"{host:<{width}} | {line}")
    return 1 if failures else 0


def _follow(commands: list[tuple[str, list[str]]], width: int, write: Write) -> int:
    lines: queue.Queue[tuple[str, str] | None] = queue.Queue()
    procs = []

    def pump(host: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((host, line.rstrip("\n")))
        lines.put(None)

    for host, argv in commands:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        threading.Thread(target=pump, args=(host, proc), daemon=True).start()
    open_streams = len(procs)
    try:
        while open_streams:
            item = lines.get()
            if item is None:
                open_streams -= 1
                continue
            write(f"{item[0]:<{width}} | {item[1]}")
    finally:
        for proc in procs:
            proc.terminate()
    return 0
