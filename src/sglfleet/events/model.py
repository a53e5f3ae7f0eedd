"""Typed Ansible run events and the state they reduce into (pure; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

HostStatus = Literal["ok", "changed", "failed", "skipped", "unreachable"]


@dataclass(frozen=True)
class PlayStarted:
    name: str


@dataclass(frozen=True)
class TaskStarted:
    name: str
    play: str


@dataclass(frozen=True)
class HostResult:
    host: str
    task: str
    status: HostStatus
    message: str = ""
    ignored: bool = False
    skip_reason: str = ""


@dataclass(frozen=True)
class StatsReported:
    recap: dict[str, dict[str, int]]
    # What the playbook reported with `ansible.builtin.set_stats` (per_host: false, aggregate:
    # true): e.g. playbooks/status.yml's {"sglfleet_status": {host: {...}}}.
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFinished:
    rc: int
    status: str


Event = PlayStarted | TaskStarted | HostResult | StatsReported | RunFinished

_RESULT_EVENTS: dict[str, HostStatus] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


def _message(res: dict[str, Any]) -> str:
    """What a result says: its message and detail; for a loop, the first item that failed or could
    not reach its host (the loop's own msg is only "All items completed")."""
    for item in res.get("results") or []:
        if isinstance(item, dict) and (item.get("unreachable") or item.get("failed")):
            return _message(item)
    parts: list[str] = []
    for key in ("msg", "reason", "stderr", "module_stderr", "stdout"):
        value = res.get(key)
        if value:
            parts.append((value if isinstance(value, str) else str(value)).strip())
        if len(parts) == 2:
            break
    return ": ".join(parts)[:2000]


def parse_event(raw: dict[str, Any]) -> Event | None:
    """One ansible-runner event dict -> a typed event, or None for events the UI ignores."""
    kind = raw.get("event", "")
    data: dict[str, Any] = raw.get("event_data") or {}
    if kind == "playbook_on_play_start":
        return PlayStarted(name=str(data.get("play") or data.get("name") or ""))
    if kind == "playbook_on_task_start":
        return TaskStarted(name=str(data.get("task") or ""), play=str(data.get("play") or ""))
    if kind in _RESULT_EVENTS:
        res: dict[str, Any] = data.get("res") or {}
        status = _RESULT_EVENTS[kind]
        if status == "ok" and res.get("changed"):
            status = "changed"
        return HostResult(
            host=str(data.get("host") or ""),
            task=str(data.get("task") or ""),
            status=status,
            message=_message(res) if status in ("failed", "unreachable") else "",
            ignored=bool(data.get("ignore_errors")),
            skip_reason=str(res.get("skip_reason") or "") if status == "skipped" else "",
        )
    if kind == "playbook_on_stats":
        recap: dict[str, dict[str, int]] = {}
        keys = {
            "ok": "ok",
            "changed": "changed",
            "failures": "failed",
            "dark": "unreachable",
            "skipped": "skipped",
        }
        for source, target in keys.items():
            for host, count in (data.get(source) or {}).items():
                recap.setdefault(host, dict.fromkeys(keys.values(), 0))[target] = int(count)
        reported = data.get("artifact_data")
        return StatsReported(recap=recap, data=dict(reported) if isinstance(reported, dict) else {})
    return None


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    last_task: str = ""


@dataclass(frozen=True)
class Failure:
    host: str
    task: str
    message: str
    unreachable: bool


@dataclass
class RunState:
    """Everything the UI shows about one run, built only by `reduce`."""

    play: str = ""
    task: str = ""
    tasks_seen: int = 0
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # the run's set_stats (StatsReported.data)
    rc: int | None = None
    status: str = "running"

    @property
    def finished(self) -> bool:
        return self.rc is not None


def reduce(state: RunState, event: Event) -> RunState:
    """Apply one event to the run state (mutates and returns it)."""
    if isinstance(event, PlayStarted):
        state.play = event.name
    elif isinstance(event, TaskStarted):
        state.task = event.name
        state.tasks_seen += 1
    elif isinstance(event, HostResult):
        counts = state.hosts.setdefault(event.host, HostCounts())
        counts.last_task = event.task
        if event.status == "changed":
            counts.ok += 1
            counts.changed += 1
        elif event.status == "failed" and event.ignored:
            counts.ok += 1
        else:
            setattr(counts, event.status, getattr(counts, event.status) + 1)
        if event.status in ("failed", "unreachable") and not event.ignored:
            state.failures.append(
                Failure(event.host, event.task, event.message, event.status == "unreachable")
            )
    elif isinstance(event, StatsReported):
        # The recap is authoritative: no_log results hide `changed` from the live events.
        state.recap = event.recap
        state.data = event.data
        for host, recap in event.recap.items():
            counts = state.hosts.setdefault(host, HostCounts())
            for key in ("ok", "changed", "failed", "skipped", "unreachable"):
                setattr(counts, key, recap.get(key, 0))
    elif isinstance(event, RunFinished):
        state.rc = event.rc
        state.status = event.status
    return state
