"""One converged lab for the whole integration session (building one costs minutes).

Tests that change the lab must put it back as they found it. Set SGLFLEET_TEST_KEEP_LAB=1 to keep
the lab after the session for debugging.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    home: Path
    name: str
    inventory: Path
    endpoint: str
    api_key: str
    nodes: list[dict[str, Any]]
    env: dict[str, str]
    first_up: subprocess.CompletedProcess[str]
    hub_token: str

    def sglfleet(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, timeout=timeout)

    def container(self, name: str) -> str:
        return next(n["container"] for n in self.nodes if n["name"] == name)

    def exec(self, node: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", self.container(node), *command],
            capture_output=True,
            text=True,
            check=False,
        )

    def wait_ready(self, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            proc = self.sglfleet("status", "-i", str(self.inventory), "--json", timeout=300)
            if proc.returncode == 0:
                status = json.loads(proc.stdout)
                if status["groups"] and all(g["ready"] for g in status["groups"]):
                    return status
            time.sleep(3)
        raise AssertionError(f"lab not ready after {timeout}s: {status}")


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sglfleet", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def _podman_usable() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/setup.sh installs it)"
    if subprocess.run(["podman", "info"], capture_output=True, check=False).returncode != 0:
        return "podman does not work on this machine"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    reason = _podman_usable()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("sglfleet-home")
    name = f"sglfleet-test-{os.getpid()}"
    env = {
        **os.environ,
        "SGLFLEET_HOME": str(home),
        "SGLFLEET_LAB_NAME": name,
        "PYTHONUNBUFFERED": "1",
    }
    up = run_cli(env, "lab", "up", "--nodes", "3", "--json", timeout=900)
    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    inventory = Path(state["inventory"])
    # A canary hub token goes through the whole converge too (see test_secrets_canary.py).
    hub_token = f"hf_canary{secrets.token_hex(16)}"
    secrets_file = inventory / "group_vars" / "all" / "secrets.yml"
    with secrets_file.open("a", encoding="utf-8") as handle:
        handle.write(f"model_weights_hub_token: {hub_token}\n")
    first = run_cli(env, "up", "-i", str(inventory), "--json", timeout=2400)
    try:
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        status = json.loads(run_cli(env, "lab", "status", "--json").stdout)
        yield Lab(
            home=home,
            name=name,
            inventory=inventory,
            endpoint=status["endpoint"],
            api_key=status["api_key"],
            nodes=status["nodes"],
            env=env,
            first_up=first,
            hub_token=hub_token,
        )
    finally:
        if not os.environ.get("SGLFLEET_TEST_KEEP_LAB"):
            run_cli(env, "lab", "down", "--keep-image", timeout=300)
