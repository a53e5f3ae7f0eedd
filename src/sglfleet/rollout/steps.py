"""The rollout's building blocks, each one Ansible run or one HTTP exchange; shared with `ops`."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sglfleet import host_keys
from sglfleet.errors import SglfleetError
from sglfleet.events import Event, HostResult, RunState
from sglfleet.inventory import load_inventory
from sglfleet.models import Inventory
from sglfleet.rollout.http import RouterClient, in_flight, ready, smoke_test
from sglfleet.runner import RunResult, run_playbook
from sglfleet.ssh import run_on
from sglfleet.topology import plan

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """A serving group as the rollout and the operations see it."""

    name: str
    hosts: tuple[str, ...]
    rank0_url: str
    model: str
    routed: bool
    worker_type: str
    bootstrap_port: int | None
    unit: str


@dataclass(frozen=True)
class Cluster:
    inventory: Path
    inv: Inventory
    targets: tuple[Target, ...]
    router_url: str | None
    api_key: str | None = field(repr=False)

    def router(self) -> RouterClient | None:
        return RouterClient(self.router_url, self.api_key) if self.router_url else None

    def select(self, names: list[str] | None) -> list[Target]:
        if not names:
            return list(self.targets)
        known = {t.name: t for t in self.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SglfleetError(
                f"no serving group named {', '.join(unknown)}",
                "serving groups: " + ", ".join(known),
            )
        return [known[n] for n in names]

    def group_of(self, host: str) -> Target:
        for target in self.targets:
            if host in target.hosts:
                return target
        raise SglfleetError(
            f"host {host} is in no serving group",
            "hosts in serving groups: " + ", ".join(h for t in self.targets for h in t.hosts),
        )


def load_cluster(inventory: Path) -> Cluster:
    inv = load_inventory(inventory)
    cluster = plan(inv)
    specs = {s.name: s for s in inv.serving_groups}
    targets = []
    for group in cluster.serving_groups:
        spec = specs[group.spec_name]
        model = inv.models[group.model]
        targets.append(
            Target(
                name=group.name,
                hosts=tuple(n.host for n in group.nodes),
                rank0_url=group.api_url,
                model=model.served_name or model.name,
                routed=spec.router and cluster.router_url is not None,
                worker_type=group.mode,
                bootstrap_port=(
                    spec.disaggregation.bootstrap_port
                    if group.mode == "prefill" and spec.disaggregation
                    else None
                ),
                unit=group.nodes[0].unit,
            )
        )
    return Cluster(
        inventory=inventory,
        inv=inv,
        targets=tuple(targets),
        router_url=cluster.router_url,
        api_key=inv.api_key.reveal() if inv.api_key else None,
    )


def run_ansible(playbook: str, inventory: Path, **kwargs: Any) -> RunResult:
    """run_playbook in a worker thread. On the main thread, ansible_runner.run installs SIGINT and
    SIGTERM handlers that cancel the playbook mid-task (and replace ours); off it, it installs
    none, so an interrupt reaches the rollout, which settles the group in progress first."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ansible") as pool:
        return pool.submit(run_playbook, playbook, inventory, **kwargs).result()


def hosts_of(targets: list[Target]) -> list[str]:
    return [h for t in targets for h in t.hosts]


def limit_of(targets: list[Target]) -> str:
    return ",".join(hosts_of(targets))


@dataclass
class Changes:
    """What a --check run of serving.yml would change, per host."""

    tasks: dict[str, list[str]]
    changed_hosts: set[str]
    unreachable: list[str]
    failures: list[str]
    result: RunResult


def detect_changes(inventory: Path, targets: list[Target]) -> Changes:
    """Run serving.yml in check mode on the groups' hosts: a host with a change differs from the
    inventory's desired state (files, SGLang version, venv, unit, or a stopped unit)."""
    tasks: dict[str, list[str]] = {}

    def collect(event: Event, _state: RunState) -> None:
        if isinstance(event, HostResult) and event.status == "changed":
            tasks.setdefault(event.host, []).append(event.task)

    result = run_ansible(
        "playbooks/serving.yml",
        inventory,
        limit=limit_of(targets),
        skip_tags="router",
        check=True,
        on_event=collect,
    )
    changed = {h for h, counts in result.state.recap.items() if counts.get("changed", 0) > 0}
    changed |= set(tasks)
    return Changes(
        tasks=tasks,
        changed_hosts=changed,
        unreachable=unreachable_hosts(result),
        failures=[
            f"{f.host}: {f.task}: {f.message}" for f in result.state.failures if not f.unreachable
        ],
        result=result,
    )


def unreachable_hosts(result: RunResult) -> list[str]:
    hosts = {f.host for f in result.state.failures if f.unreachable}
    hosts |= {h for h, counts in result.state.recap.items() if counts.get("unreachable", 0)}
    return sorted(hosts)


def failure_text(result: RunResult, limit: int = 3) -> str:
    lines = [f"{f.host}: {f.task}: {f.message[:300]}" for f in result.state.failures[:limit]]
    return "; ".join(lines) or f"ansible exit code {result.rc}"


def crashed_members(
    states: dict[str, dict[str, Any]], target: Target, baseline: dict[str, int]
) -> list[str]:
    """Members whose unit failed or was restarted by systemd since `baseline` (NRestarts)."""
    crashed = []
    for host in target.hosts:
        unit = states.get(host, {}).get(target.unit)
        if unit is None:
            continue
        restarts = int(unit.get("NRestarts", 0) or 0)
        if (
            unit.get("ActiveState") == "failed"
            or unit.get("SubState") == "auto-restart"
            or restarts > baseline.get(host, 0)
        ):
            crashed.append(
                f"{host}: {target.unit} {unit.get('ActiveState')}/{unit.get('SubState')},"
                f" restarted {restarts - baseline.get(host, 0)} time(s)"
            )
    return crashed


def restart_counts(states: dict[str, dict[str, Any]], target: Target) -> dict[str, int]:
    return {
        host: int(states.get(host, {}).get(target.unit, {}).get("NRestarts", 0) or 0)
        for host in target.hosts
    }


@dataclass
class Readiness:
    ok: bool
    seconds: float
    detail: str


UNIT_PROPERTIES = ("ActiveState", "SubState", "NRestarts")


def probe_units(inv: Inventory, target: Target) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """systemd's view of each member's unit, read over SSH; and the members that did not answer."""
    remote = ["systemctl", "show", *(f"--property={p}" for p in UNIT_PROPERTIES), target.unit]
    replies = run_on(
        [inv.hosts[h] for h in target.hosts],
        remote,
        known_hosts=host_keys.known_hosts_file(inv.path),
    )
    states: dict[str, dict[str, Any]] = {}
    lost = []
    for host, reply in replies.items():
        if reply.unreachable:
            lost.append(host)
            continue
        pairs = (line.partition("=") for line in reply.stdout.splitlines())
        states[host] = {target.unit: {key: value for key, _, value in pairs if key}}
    return states, sorted(lost)


def wait_ready(
    inv: Inventory,
    target: Target,
    timeout_s: float,
    *,
    probe_after_s: float = 15.0,
    probe_every_s: float = 30.0,
) -> Readiness:
    """Poll rank 0's /health_generate over HTTP; now and then read the members' units over SSH
    (`probe_units`), so an engine that rejects its arguments fails in seconds, not after the
    whole load budget. No playbook runs while waiting.

    systemd's NRestarts survives an explicit stop and start (seen on Debian 12's systemd 252), so
    the restart count is read once when waiting begins and later counts are compared with it."""
    started = time.monotonic()
    next_probe = started + probe_after_s
    baseline: dict[str, int] | None = None
    while True:
        elapsed = time.monotonic() - started
        if ready(target.rank0_url):
            return Readiness(True, elapsed, f"ready after {elapsed:.1f}s")
        if elapsed >= timeout_s:
            return Readiness(
                False,
                elapsed,
                f"{target.rank0_url}/health_generate not 200 within {timeout_s:.0f}s",
            )
        if baseline is None or time.monotonic() >= next_probe:
            states, lost = probe_units(inv, target)
            if lost:
                return Readiness(False, elapsed, f"unreachable: {', '.join(lost)}")
            if baseline is None:
                baseline = restart_counts(states, target)
            crashed = crashed_members(states, target, baseline)
            if crashed:
                return Readiness(False, elapsed, "engine exited: " + "; ".join(crashed))
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + probe_every_s
        time.sleep(2.0)


def drain(target: Target, timeout_s: float, quiet_reads: int = 2) -> tuple[bool, str]:
    """Wait until rank 0 runs and queues nothing (read twice in a row), or the budget ends."""
    started = time.monotonic()
    zeros = 0
    last: int | None = None
    while time.monotonic() - started < timeout_s:
        last = in_flight(target.rank0_url)
        if last is None:
            return True, "no metrics from rank 0 (not running, or --enable-metrics off)"
        zeros = zeros + 1 if last == 0 else 0
        if zeros >= quiet_reads:
            return True, f"drained in {time.monotonic() - started:.1f}s"
        time.sleep(0.5)
    return False, f"{last} request(s) still in flight after {timeout_s:.0f}s"


def smoke(cluster: Cluster, target: Target, timeout_s: float) -> str:
    return smoke_test(target.rank0_url, target.model, cluster.api_key, timeout=timeout_s)


class Interrupt:
    """SIGINT asks the rollout to stop after the group in progress is settled (updated, or rolled
    back), so that no group is left half-changed; a second SIGINT only repeats the notice."""

    def __init__(self, progress: Progress) -> None:
        self.requested = False
        self._progress = progress

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        self._progress(
            "interrupt: stopping after the group in progress is serving again (old or new state)"
        )

    @contextmanager
    def installed(self) -> Iterator[Interrupt]:
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
