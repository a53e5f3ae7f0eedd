"""Pure parts of the rollout, and its router/engine HTTP against the real sglang-router 0.3.2 and
rehearsal engines on localhost (skipped when the router is not installed)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sglfleet.errors import SglfleetError
from sglfleet.rollout.core import plan_batches
from sglfleet.rollout.http import RouterClient, in_flight, parse_in_flight, ready, smoke_test
from sglfleet.rollout.record import GroupRecord, RolloutRecord, history
from sglfleet.rollout.steps import Target, crashed_members, drain
from sglfleet_rehearsal.testing import (
    free_port,
    start_engine,
    wait_for_status,
    write_config,
    write_tiny_model,
)

# The real sglang-router, installed by `scripts/setup.sh --sglang` (scripts/test.sh runs it).
ROUTER_PYTHON = Path(
    os.environ.get(
        "SGLFLEET_ROUTER_PYTHON",
        str(Path(__file__).resolve().parents[3] / ".cache" / "router-venv" / "bin" / "python"),
    )
)
KEY = "unit-key-9a1"


def test_batches_keep_one_group_serving() -> None:
    groups = ["a", "b", "c", "d"]
    assert plan_batches(groups, 4, 1, False) == [["a"], ["b"], ["c"], ["d"]]
    assert plan_batches(groups, 4, 2, False) == [["a", "b"], ["c", "d"]]
    # --max-unavailable 10 on four routed groups: three at most, one keeps serving.
    assert plan_batches(groups, 4, 10, False) == [["a", "b", "c"], ["d"]]
    assert plan_batches(groups, 4, 2, True) == [["a"], ["b", "c"], ["d"]]
    assert plan_batches(["a"], 1, 1, True) == [["a"]]
    assert plan_batches([], 3, 1, True) == []
    assert plan_batches(groups, 4, 0, False) == [["a"], ["b"], ["c"], ["d"]]


def test_in_flight_sums_running_and_queued_over_ranks() -> None:
    text = "\n".join(
        [
            "# HELP sglang:num_running_reqs The number of running requests.",
            "# TYPE sglang:num_running_reqs gauge",
            'sglang:num_running_reqs{model_name="m",tp_rank="0"} 3.0',
            'sglang:num_running_reqs{model_name="m",tp_rank="1"} 1.0',
            'sglang:num_queue_reqs{model_name="m",tp_rank="0"} 2.0',
            'sglang:num_used_tokens{model_name="m",tp_rank="0"} 900.0',
        ]
    )
    assert parse_in_flight(text) == 6
    assert parse_in_flight("sglang:num_used_tokens 1.0\n") is None


def _target(hosts: tuple[str, ...] = ("n1", "n2")) -> Target:
    return Target(
        "tp", hosts, "http://n1:30000", "m", True, "regular", None, "sglang-server@tp.service"
    )


def test_crashed_members_sees_restarts_failures_and_auto_restart() -> None:
    unit = "sglang-server@tp.service"
    healthy = {
        "n1": {unit: {"ActiveState": "active", "SubState": "running", "NRestarts": "2"}},
        "n2": {unit: {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}},
    }
    assert crashed_members(healthy, _target(), {"n1": 2, "n2": 0}) == []
    restarted = {**healthy, "n2": {unit: {"ActiveState": "active", "NRestarts": "1"}}}
    assert [c.split(":")[0] for c in crashed_members(restarted, _target(), {"n1": 2})] == ["n2"]
    waiting = {**healthy, "n1": {unit: {"ActiveState": "activating", "SubState": "auto-restart"}}}
    assert [c.split(":")[0] for c in crashed_members(waiting, _target(), {"n1": 2})] == ["n1"]
    failed = {**healthy, "n1": {unit: {"ActiveState": "failed", "SubState": "failed"}}}
    assert crashed_members(failed, _target(), {"n1": 0, "n2": 0})


def test_record_is_saved_atomically_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path))
    record = RolloutRecord(id="20260101T000000-1", inventory="/inv", options={"canary": False})
    record.groups.append(GroupRecord("tp", ["n1"], "http://n1:30000", True))
    record.save()
    assert record.path == tmp_path / "rollouts" / "20260101T000000-1.json"
    assert not list((tmp_path / "rollouts").glob("*.tmp"))
    listed = history()
    assert listed[0]["id"] == record.id
    assert listed[0]["groups"][0]["result"] == "pending"


# -- the router's worker API and the engine probes, for real ---------------------------------


@dataclass
class Fleet:
    router: RouterClient
    engines: list[str]
    processes: list[subprocess.Popen[bytes]]


def _wait_router(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            workers = RouterClient(url, KEY).workers()
            if len(workers) == 2 and all(w.healthy for w in workers):
                return
        except (SglfleetError, httpx.HTTPError):
            pass  # still starting
        time.sleep(0.3)
    raise AssertionError(f"router at {url} did not list two healthy workers")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if not ROUTER_PYTHON.exists():
        pytest.fail(
            f"sglang-router is not installed at {ROUTER_PYTHON}: run `bash scripts/setup.sh`"
            " (or point SGLFLEET_ROUTER_PYTHON at a venv with it)"
        )
    tmp = tmp_path_factory.mktemp("router")
    model = write_tiny_model(tmp / "model")
    processes: list[subprocess.Popen[bytes]] = []
    engines = []
    try:
        for index in range(2):
            port = free_port()
            config = write_config(
                tmp / f"engine{index}.yaml",
                {
                    "model-path": str(model),
                    "served-model-name": "tiny",
                    "host": "127.0.0.1",
                    "port": port,
                    "api-key": KEY,
                    "enable-metrics": True,
                },
            )
            processes.append(
                start_engine(
                    config,
                    env={
                        "SGLFLEET_REHEARSAL_LOAD_SECONDS": "0.5",
                        "SGLFLEET_REHEARSAL_TOKEN_DELAY_S": "0.05",
                    },
                    log=tmp / f"engine{index}.log",
                )
            )
            engines.append(f"http://127.0.0.1:{port}")
        for url in engines:
            assert wait_for_status(f"{url}/health_generate", 200, timeout=30)
        port = free_port()
        log = (tmp / "router.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    str(ROUTER_PYTHON), "-m", "sglang_router.launch_router",
                    "--host", "127.0.0.1", "--port", str(port),
                    "--prometheus-port", str(free_port()),
                    "--worker-urls", *engines,
                    "--api-key", KEY,
                    "--health-check-endpoint", "/health_generate",
                    "--health-check-interval-secs", "1",
                    "--policy", "round_robin",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        _wait_router(url)
        yield Fleet(RouterClient(url, KEY), engines, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _chat(url: str, tokens: int) -> int:
    response = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": tokens,
        },
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    return response.status_code


def test_router_remove_drain_add_with_traffic(fleet: Fleet) -> None:
    router = fleet.router
    target = Target("a", ("h",), fleet.engines[0], "tiny", True, "regular", None, "u")
    assert ready(target.rank0_url)
    assert in_flight(target.rank0_url) == 0
    # Requests through the router land on both engines (round robin); keep some in flight.
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda: codes.append(_chat(router.url, 30))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    assert (in_flight(target.rank0_url) or 0) > 0, "the test needs requests in flight"
    assert router.remove(target.rank0_url)
    assert router.find(target.rank0_url) is None
    ok, detail = drain(target, timeout_s=60)
    assert ok, detail
    assert in_flight(target.rank0_url) == 0
    for thread in threads:
        thread.join()
    assert codes == [200] * 6, "removing a worker must not fail requests already sent to it"
    # With the worker out, every new request goes to the other engine.
    assert all(_chat(router.url, 2) == 200 for _ in range(4))
    assert not router.remove(target.rank0_url), "removing an absent worker is a no-op"
    router.add(target.rank0_url, timeout=30)
    worker = router.find(target.rank0_url)
    assert worker is not None and worker.healthy


def test_smoke_test_needs_the_key_and_the_model(fleet: Fleet) -> None:
    url = fleet.engines[1]
    assert smoke_test(url, "tiny", KEY) == ""
    assert "401" in smoke_test(url, "tiny", "wrong-key")
    assert smoke_test("http://127.0.0.1:9", "tiny", KEY).startswith("chat completion failed")


def test_router_with_a_wrong_key_is_a_clear_error(fleet: Fleet) -> None:
    with pytest.raises(SglfleetError, match="401"):
        RouterClient(fleet.router.url, "wrong").workers()
