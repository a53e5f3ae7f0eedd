"""`sglfleet rollout` on a real 3-node lab (tp: lab-1 + lab-2, replica: lab-3, router on lab-3),
under client load through the router: a clean rollout, an automatic rollback, an interrupt and an
unreachable host. One lab for the module (SGLFLEET_LAB_NAME/SGLFLEET_HOME of its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

# Budgets fit for the lab's rehearsal engine (a real 671B load needs the 2400 s default).
# Flag values new to this run, so that a reused lab (SGLFLEET_TEST_ROLLOUT_HOME) changes too.
FIRST = 100 + int(time.time()) % 800
INTERRUPTED = FIRST + 1
UNREACHABLE = FIRST + 2
FAST = ["--ready-timeout", "180", "--drain-timeout", "60", "--smoke-timeout", "60"]


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "sglfleet", *args]


@dataclass
class RolloutLab:
    home: Path
    env: dict[str, str]
    inventory: Path
    endpoint: str
    api_key: str = field(repr=False)
    containers: dict[str, str]

    def run(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_argv(*args), capture_output=True, text=True, env=self.env, cwd=ROOT,
            timeout=timeout, check=False,
        )  # fmt: skip

    @property
    def lab_vars(self) -> Path:
        return self.inventory / "group_vars" / "all" / "lab.yml"

    def set_groups(self, change: dict[str, dict[str, Any]]) -> None:
        """Set keys of serving groups in the inventory (the desired state)."""
        document = yaml.safe_load(self.lab_vars.read_text())
        for group in document["sglfleet_serving_groups"]:
            group.update(change.get(group["name"], {}))
        self.lab_vars.write_text("---\n" + yaml.safe_dump(document, sort_keys=False))

    def server_info(self, url: str) -> dict[str, Any]:
        response = httpx.get(
            f"{url}/get_server_info",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
        )
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info

    def unit_prop(self, node: str, unit: str, prop: str) -> str:
        proc = subprocess.run(
            ["podman", "exec", self.containers[node], "systemctl", "show", "-P", prop, unit],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return proc.stdout.strip()

    def latest_record(self) -> dict[str, Any] | None:
        records = sorted((self.home / "rollouts").glob("*.json"))
        return json.loads(records[-1].read_text()) if records else None

    def router_urls(self) -> set[str]:
        router = self.endpoint.removesuffix("/v1")
        response = httpx.get(
            f"{router}/workers", headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10
        )
        return {w["url"] for w in response.json()["workers"] if w["is_healthy"]}


def _wait_serving(lab: RolloutLab, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        proc = lab.run("status", "-i", str(lab.inventory), "--json", timeout=300)
        if proc.returncode == 0:
            status = json.loads(proc.stdout)
            if status["groups"] and all(g["ready"] for g in status["groups"]):
                urls = {g["url"] for g in status["groups"]}
                if urls <= lab.router_urls():
                    return status
        time.sleep(3)
    raise AssertionError(f"lab not serving after {timeout}s: {status}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RolloutLab]:
    for tool in ("podman", "ansible-playbook"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode:
            pytest.skip(f"{tool} is not installed")
    # SGLFLEET_TEST_ROLLOUT_HOME + SGLFLEET_TEST_ROLLOUT_LAB: reuse a converged lab (debugging).
    reuse = os.environ.get("SGLFLEET_TEST_ROLLOUT_HOME")
    home = Path(reuse) if reuse else tmp_path_factory.mktemp("rollout-home")
    name = os.environ.get("SGLFLEET_TEST_ROLLOUT_LAB", f"sglfleet-rollout-{os.getpid()}")
    env = {
        **os.environ,
        "SGLFLEET_HOME": str(home),
        "SGLFLEET_LAB_NAME": name,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    run = RolloutLab(home, env, Path(), "", "", {}).run
    inventory = home / "lab" / "inventory"
    try:
        if not reuse:
            up = run("lab", "up", "--nodes", "3", "--json", timeout=900)
            assert up.returncode == 0, up.stderr[-3000:]
            inventory = Path(json.loads(up.stdout)["inventory"])
            # Only what serving needs (shared storage, engines, router): the node stack's roles
            # are not what this module tests, and converging them costs minutes here.
            converge = subprocess.run(
                ["ansible-playbook", "-i", str(inventory), "playbooks/storage.yml",
                 "playbooks/serving.yml"],
                capture_output=True, text=True, env=env, cwd=ROOT, timeout=2400, check=False,
            )  # fmt: skip
            assert converge.returncode == 0, converge.stdout[-4000:]
        state = json.loads(run("lab", "status", "--json").stdout)
        lab = RolloutLab(
            home=home,
            env=env,
            inventory=inventory,
            endpoint=state["endpoint"],
            api_key=state["api_key"],
            containers={n["name"]: n["container"] for n in state["nodes"]},
        )
        _wait_serving(lab)
        yield lab
    finally:
        if not reuse and not os.environ.get("SGLFLEET_TEST_KEEP_LAB"):
            run("lab", "down", "--keep-image", timeout=300)


class Load:
    """Steady client load: a pool of threads sending chat completions through the router, without
    client-side retries, so that every failure the fleet lets through is counted."""

    def __init__(self, lab: RolloutLab, threads: int = 3) -> None:
        self.url = f"{lab.endpoint}/chat/completions"
        self.headers = {"Authorization": f"Bearer {lab.api_key}"}
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                body = {
                    "model": "lab-tiny",
                    "messages": [{"role": "user", "content": "count to five"}],
                    "max_tokens": 16,
                }
                try:
                    response = client.post(self.url, json=body, headers=self.headers)
                    good = response.status_code == 200 and response.json()["choices"]
                    outcome = "" if good else f"HTTP {response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if outcome:
                        self.failures.append(outcome)
                    else:
                        self.ok += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def _group(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in record["groups"] if g["name"] == name)


def _rank0(lab: RolloutLab, status: dict[str, Any], name: str) -> str:
    return str(next(g["url"] for g in status["groups"] if g["name"] == name))


def test_rollout_of_a_changed_flag_under_load_fails_no_request(lab: RolloutLab) -> None:
    status = _wait_serving(lab)
    lab.set_groups(
        {"tp": {"server_args": {"max_running_requests": FIRST}},
         "replica": {"server_args": {"max_running_requests": FIRST}}}
    )  # fmt: skip
    with Load(lab) as load:
        time.sleep(3)
        proc = lab.run("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST)
        time.sleep(3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert record["result"] == "succeeded"
    assert [(g["name"], g["result"]) for g in record["groups"]] == [
        ("tp", "updated"),
        ("replica", "updated"),
    ]
    for group in record["groups"]:
        steps = [s["name"] for s in group["steps"]]
        assert steps == [
            "detect", "router_remove", "drain", "apply", "wait_ready", "smoke_test", "router_add",
        ]  # fmt: skip
        assert group["restart_to_ready_s"] > 0
    assert load.failures == [], load.failures[:5]
    assert load.ok > 20, "the load generator must have run through the rollout"
    for name in ("tp", "replica"):
        assert lab.server_info(_rank0(lab, status, name))["max_running_requests"] == FIRST
    saved = json.loads(Path(record["path"]).read_text())
    assert saved["result"] == "succeeded" and saved["exit_code"] == 0
    assert lab.api_key not in proc.stdout + proc.stderr + Path(record["path"]).read_text()
    # Nothing differs any more: a second rollout touches nothing.
    again = lab.run("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["result"] == "nothing_to_do"


def test_unknown_flag_is_refused_before_any_host_is_touched(lab: RolloutLab) -> None:
    lab.set_groups({"replica": {"extra_args": ["--no-such-flag-sglfleet"]}})
    try:
        proc = lab.run("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST)
    finally:
        lab.set_groups({"replica": {"extra_args": []}})
    # Inventory validation knows SGLang 0.5.23's flags: exit 2, no record, no host contacted.
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "no-such-flag-sglfleet" in proc.stderr
    record = lab.latest_record()
    assert record is None or record["result"] != "running"


def test_engine_rejected_change_is_rolled_back_and_the_rest_untouched(lab: RolloutLab) -> None:
    """A change that passes validation but that the engine refuses at start-up (here a value the
    rehearsal engine rejects, as SGLang rejects a bad environment or model) is rolled back."""
    status = _wait_serving(lab)
    unit_tp = "sglang-server@tp.service"
    tp_pids = {n: lab.unit_prop(n, unit_tp, "MainPID") for n in ("lab-1", "lab-2")}
    replica_url = _rank0(lab, status, "replica")
    before = lab.server_info(replica_url)["max_running_requests"]
    bad_env = {"SGLFLEET_REHEARSAL_LOAD_SECONDS": "not-a-number"}
    lab.set_groups({"replica": {"env": bad_env}})
    try:
        with Load(lab) as load:
            proc = lab.run("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST)
            time.sleep(2)
    finally:
        lab.set_groups({"replica": {"env": {}}})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert record["result"] == "rolled_back"
    assert _group(record, "tp")["result"] == "unchanged"
    replica = _group(record, "replica")
    assert replica["result"] == "rolled_back"
    assert "engine exited" in replica["error"], replica["error"]
    steps = [s["name"] for s in replica["steps"]]
    assert steps[-4:] == ["rollback", "wait_ready", "smoke_test", "router_add"], steps
    assert load.failures == [], load.failures[:5]
    # The rest of the fleet was not restarted; the rolled-back group serves its previous state.
    assert {n: lab.unit_prop(n, unit_tp, "MainPID") for n in tp_pids} == tp_pids
    assert lab.server_info(replica_url)["max_running_requests"] == before
    assert replica_url in lab.router_urls()
    env_file = subprocess.run(
        ["podman", "exec", lab.containers["lab-3"], "cat", "/etc/sglfleet/replica/server.env"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "not-a-number" not in env_file
    # With the inventory fixed, nothing is left to do.
    again = lab.run("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST)
    assert json.loads(again.stdout)["result"] == "nothing_to_do", again.stderr[-2000:]


def _wait_record_step(lab: RolloutLab, group: str, step: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = lab.latest_record()
        if record and record["result"] == "running":
            steps = [s["name"] for s in _group(record, group)["steps"]]
            if step in steps:
                return
        time.sleep(0.2)
    raise AssertionError(f"rollout never reached {group}/{step}")


def test_interrupt_leaves_every_group_old_or_new_and_serving(lab: RolloutLab) -> None:
    status = _wait_serving(lab)
    lab.set_groups(
        {"tp": {"server_args": {"max_running_requests": INTERRUPTED}},
         "replica": {"server_args": {"max_running_requests": INTERRUPTED}}}
    )  # fmt: skip
    with Load(lab) as load:
        proc = subprocess.Popen(
            cli_argv("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env, cwd=ROOT,
        )  # fmt: skip
        _wait_record_step(lab, "tp", "apply")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=3600)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-3000:]
    record = json.loads(stdout)
    assert record["result"] == "interrupted"
    assert _group(record, "tp")["result"] in ("updated", "rolled_back")
    assert _group(record, "replica")["result"] == "not_started"
    assert load.failures == [], load.failures[:5]
    serving = _wait_serving(lab, timeout=60)
    updated = _group(record, "tp")["result"] == "updated"
    expected = {"tp": INTERRUPTED if updated else FIRST, "replica": FIRST}
    for name, value in expected.items():
        assert lab.server_info(_rank0(lab, serving, name))["max_running_requests"] == value
    assert {g["url"] for g in status["groups"]} <= lab.router_urls()


def test_unreachable_host_stops_the_rollout_with_a_report(lab: RolloutLab) -> None:
    _wait_serving(lab)
    # tp (lab-1, lab-2) changes again; replica still waits for the interrupted value.
    lab.set_groups({"tp": {"server_args": {"max_running_requests": UNREACHABLE}}})
    proc = subprocess.Popen(
        cli_argv("rollout", "-i", str(lab.inventory), "--yes", "--json", *FAST),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env, cwd=ROOT,
    )  # fmt: skip
    paused = False
    try:
        _wait_record_step(lab, "tp", "drain")
        subprocess.run(["podman", "pause", lab.containers["lab-2"]], check=True)
        paused = True
        stdout, stderr = proc.communicate(timeout=3600)
    finally:
        if paused:
            subprocess.run(["podman", "unpause", lab.containers["lab-2"]], check=False)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, stdout[-2000:] + stderr[-3000:]
    record = json.loads(stdout)
    assert record["result"] == "unreachable"
    assert "lab-2" in record["unreachable"]
    assert "lab-2" in record["message"]
    assert "Error:" not in stdout
    assert "unreachable" in stderr
    assert _group(record, "replica")["result"] == "not_started"
    assert _group(record, "tp")["result"] in ("rollback_failed", "rolled_back")
