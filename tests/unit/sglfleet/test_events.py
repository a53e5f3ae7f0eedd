"""Replay a recorded ansible-runner run through the event parser and reducer."""

from __future__ import annotations

import json
from pathlib import Path

from sglfleet.events import HostResult, PlayStarted, RunFinished, RunState, parse_event, reduce

FIXTURE = Path(__file__).parents[2] / "fixtures" / "events" / "site-failed-verify.jsonl"


def replay() -> RunState:
    state = RunState()
    for line in FIXTURE.read_text().splitlines():
        event = parse_event(json.loads(line))
        if event is not None:
            reduce(state, event)
    reduce(state, RunFinished(rc=2, status="failed"))
    return state


def test_replay_reduces_to_the_recorded_recap() -> None:
    state = replay()
    assert state.finished and state.rc == 2
    assert set(state.recap) == {"lab-1", "lab-2", "lab-3"}
    for host, counts in state.hosts.items():
        assert counts.failed == state.recap[host]["failed"] == 1
        assert counts.changed == state.recap[host]["changed"]
        assert counts.skipped == state.recap[host]["skipped"]


def test_censored_results_count_as_ok_until_the_recap() -> None:
    state = RunState()
    for line in FIXTURE.read_text().splitlines():
        raw = json.loads(line)
        if raw["event"] == "playbook_on_stats":
            break
        event = parse_event(raw)
        if event is not None:
            reduce(state, event)
    # One no_log task (the server arguments with the API key) hides its `changed` flag.
    assert state.hosts["lab-1"].changed == 9


def test_failures_name_host_task_and_cause() -> None:
    failures = replay().failures
    assert sorted(f.host for f in failures) == ["lab-1", "lab-2", "lab-3"]
    for failure in failures:
        assert failure.task == "Service | Verify the unit with systemd-analyze"
        assert "non-zero return code" in failure.message
        assert "sglfleet-stage is not executable" in failure.message
        assert not failure.unreachable


def test_changed_ok_and_ignored_failures() -> None:
    state = RunState()
    reduce(state, PlayStarted("p"))
    reduce(state, HostResult("h", "t1", "changed"))
    reduce(state, HostResult("h", "t2", "ok"))
    reduce(state, HostResult("h", "t3", "failed", "boom", ignored=True))
    reduce(state, HostResult("h", "t4", "unreachable", "ssh: no route"))
    counts = state.hosts["h"]
    assert (counts.ok, counts.changed, counts.failed, counts.unreachable) == (3, 1, 0, 1)
    assert [f.task for f in state.failures] == ["t4"]
    assert state.failures[0].unreachable


def test_unknown_events_are_ignored() -> None:
    assert parse_event({"event": "verbose", "event_data": {}}) is None
    ok = parse_event({"event": "runner_on_ok", "event_data": {"host": "a", "res": {}}})
    assert isinstance(ok, HostResult) and ok.status == "ok"


def test_reported_data_reaches_the_run_state() -> None:
    # The shape ansible-runner gives playbook_on_stats when a play ran set_stats (per_host: false,
    # aggregate: true) on two hosts: each host's entry merged into one mapping (seen with
    # ansible-runner and ansible-core of .venv, 2026-12-01).
    from sglfleet.status import reported_status

    units = {"sglang-server@r1.service": {"ActiveState": "active", "NRestarts": "0"}}
    raw = {
        "event": "playbook_on_stats",
        "event_data": {
            "ok": {"lab-1": 3, "lab-2": 3},
            "artifact_data": {
                "sglfleet_status": {
                    "lab-1": {"units": units, "warmup": {"sglang-server@r1.service": "start @1"}},
                    "lab-2": {"units": {}, "warmup": {}},
                }
            },
        },
    }
    state = reduce(RunState(), parse_event(raw))  # type: ignore[arg-type]
    reported = reported_status(state.data)
    assert reported["lab-1"]["units"] == units
    assert reported["lab-2"] == {"units": {}, "warmup": {}}
    assert reported_status({}) == {} and reported_status({"sglfleet_status": "x"}) == {}


def test_a_loop_that_could_not_reach_its_host_says_why() -> None:
    said = "Failed to connect to the host via ssh: Host key verification failed."
    raw = {
        "event": "runner_on_unreachable",
        "event_data": {
            "host": "lab-1",
            "task": "Status | Read each unit's state",
            "res": {
                "msg": "All items completed",
                "unreachable": True,
                "results": [
                    {"item": "a.service", "unreachable": True, "msg": said},
                    {"item": "b.service", "skipped": True},
                ],
            },
        },
    }
    event = parse_event(raw)
    assert isinstance(event, HostResult) and event.status == "unreachable"
    assert event.message == said
