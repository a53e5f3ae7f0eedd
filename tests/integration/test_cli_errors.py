"""`sglfleet plan` and `sglfleet up` on broken inventories: exit 2, Error/Hint, no host touched.

Every host's ansible_host/ansible_port points at a socket this test listens on, so any SSH
attempt is seen. A control run of `up` on the valid base proves the socket does see Ansible.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "broken"))

import cases as broken  # noqa: E402


@dataclass
class Listeners:
    """One listening socket per inventory host; records every connection it accepts."""

    sockets: list[socket.socket] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def ports(self) -> list[int]:
        return [s.getsockname()[1] for s in self.sockets]

    def serve(self, listener: socket.socket) -> None:
        listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append((peer[0], listener.getsockname()[1]))
            conn.close()  # ssh sees the connection closed: unreachable, quickly

    def prepare(self, inv: broken.Inv) -> None:
        for (_, host_vars), port in zip(sorted(inv.hosts.items()), self.ports(), strict=True):
            host_vars["ansible_host"] = "127.0.0.1"
            host_vars["ansible_port"] = port


@pytest.fixture(scope="module")
def listeners() -> Iterator[Listeners]:
    state = Listeners()
    threads = []
    for _ in broken.base_hosts():
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        state.sockets.append(listener)
        thread = threading.Thread(target=state.serve, args=(listener,), daemon=True)
        thread.start()
        threads.append(thread)
    yield state
    state.stop.set()
    for thread in threads:
        thread.join(timeout=2)
    for listener in state.sockets:
        listener.close()


def sglfleet(args: list[str], home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI with its own SGLFLEET_HOME and this checkout (not $SGLFLEET_PROJECT)."""
    env = {
        **os.environ,
        "SGLFLEET_HOME": str(home),
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "200",
    }
    env.pop("SGLFLEET_PROJECT", None)
    return run_cli(env, *args, timeout=timeout)


def flat(text: str) -> str:
    """Rendered output with line wrapping undone, for substring checks."""
    return re.sub(r"\s+", " ", text)


def assert_rejected(
    proc: subprocess.CompletedProcess[str], case: broken.Case, command: str
) -> None:
    err = flat(proc.stderr)
    context = f"{case.name} `{command}` rc={proc.returncode}\n{proc.stderr}\n{proc.stdout[-2000:]}"
    assert proc.returncode == 2, context
    assert "Traceback" not in proc.stderr + proc.stdout, context
    assert "Error:" in err and "Hint:" in err, context
    for expect in case.expect:
        if expect.host:
            assert f"host {expect.host}" in err, context
        if expect.variable:
            assert f"variable {expect.variable}" in err, context
        assert flat(expect.message) in err, context
        assert flat(expect.hint) in err, context
    errors = err.count("Error: ")
    hints = err.count("Hint: ")
    assert hints >= errors - 1, context  # one summary line, then an Error/Hint pair per problem


@pytest.mark.parametrize("case", broken.CASES, ids=lambda c: c.name)
def test_plan_and_up_reject_before_touching_any_host(
    case: broken.Case, tmp_path: Path, listeners: Listeners
) -> None:
    inventory = broken.build(case, tmp_path / "inv", prepare=listeners.prepare)
    home = tmp_path / "home"
    before = len(listeners.connections)
    with ThreadPoolExecutor(max_workers=2) as pool:
        plan = pool.submit(sglfleet, ["plan", "-i", str(inventory)], home / "plan")
        up = pool.submit(sglfleet, ["up", "-i", str(inventory)], home / "up")
        plan_proc, up_proc = plan.result(), up.result()
    assert_rejected(plan_proc, case, "plan")
    assert_rejected(up_proc, case, "up")
    assert len(listeners.connections) == before, "a host was contacted"
    assert not (home / "up" / "runs").exists(), "a runner workspace was created"


def test_many_problems_are_all_rendered(tmp_path: Path, listeners: Listeners) -> None:
    case = broken.MANY_PROBLEMS
    inventory = broken.build(case, tmp_path / "inv", prepare=listeners.prepare)
    proc = sglfleet(["up", "-i", str(inventory)], tmp_path / "home")
    assert_rejected(proc, case, "up")
    err = proc.stderr
    summary = re.search(r"Error: inventory \S+: (\d+) problems", flat(err))
    assert summary, err
    count = int(summary.group(1))
    assert count >= len(case.expect)
    assert flat(err).count("Error: [") + flat(err).count("Error: /") == count
    assert flat(err).count("Hint: ") == count


def test_control_up_on_the_valid_base_does_reach_the_listener(
    tmp_path: Path, listeners: Listeners
) -> None:
    """Without this, 'no connection seen' could mean the listener sees nothing at all."""
    inventory = broken.valid(tmp_path / "inv", prepare=listeners.prepare)
    home = tmp_path / "home"
    plan = sglfleet(["plan", "-i", str(inventory)], home)
    assert plan.returncode == 0, plan.stderr
    before = len(listeners.connections)
    up = sglfleet(["up", "-i", str(inventory), "--json"], home, timeout=300)
    assert "Traceback" not in up.stderr
    assert up.returncode not in (0, 2), up.stdout + up.stderr  # validated, then unreachable
    assert len(listeners.connections) > before
    assert (home / "runs").is_dir()
