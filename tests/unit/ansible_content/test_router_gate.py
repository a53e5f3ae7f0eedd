"""The endpoint's API-key gate (roles/sglang_router/files/sglfleet_router_gate.py), over real HTTP.

sglang-router 0.3.2 answered /v1/models and /get_server_info without the key when run here with
`--api-key` (docs/security.md, "The endpoint"): the gate stands in front of it. Upstream here is the
rehearsal engine started WITHOUT a key, i.e. a backend that answers every route, as the router's
public routes do, so whatever the gate lets through is visible.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from sglfleet_rehearsal.testing import (
    free_port,
    start_engine,
    wait_for_status,
    write_config,
    write_tiny_model,
)

ROOT = Path(__file__).resolve().parents[3]
KEY = "gate-key-8d2e"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _gate_module() -> ModuleType:
    path = ROOT / "roles/sglang_router/files/sglfleet_router_gate.py"
    spec = importlib.util.spec_from_file_location("sglfleet_router_gate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GATE = _gate_module()


@pytest.fixture(scope="module")
def gate_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("gate")
    upstream_port = free_port()
    config = write_config(
        tmp / "server-args.yaml",
        {
            "model-path": str(write_tiny_model(tmp / "model")),
            "served-model-name": "tiny",
            "host": "127.0.0.1",
            "port": upstream_port,
        },
    )
    engine: subprocess.Popen[bytes] = start_engine(
        config,
        env={"SGLFLEET_REHEARSAL_LOAD_SECONDS": "0", "SGLFLEET_REHEARSAL_TOKEN_DELAY_S": "0.005"},
        log=tmp / "engine.log",
    )
    assert wait_for_status(f"http://127.0.0.1:{upstream_port}/health", 200)
    gate_port = free_port()
    loop = asyncio.new_event_loop()
    gate = GATE.Gate(KEY, "127.0.0.1", upstream_port)
    task = loop.create_task(GATE.serve(gate, "127.0.0.1", gate_port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", gate_port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{gate_port}"
    finally:

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        engine.terminate()
        engine.wait(timeout=10)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/tiny"),
        ("GET", "/get_server_info"),
        ("GET", "/get_model_info"),
        ("GET", "/server_info"),
        ("GET", "/metrics"),
        ("GET", "/workers"),
        ("GET", "/no/such/route"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/generate"),
        ("POST", "/health"),  # probes are GET/HEAD only
        ("OPTIONS", "/v1/models"),
    ],
)
def test_every_route_needs_the_key(gate_url: str, method: str, path: str) -> None:
    response = httpx.request(method, gate_url + path, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}
    wrong = httpx.request(method, gate_url + path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/health_generate", "/health?x=1"])
def test_probes_pass_without_the_key(gate_url: str, path: str) -> None:
    assert httpx.get(gate_url + path).status_code == 200


def test_the_key_opens_every_route(gate_url: str) -> None:
    models = httpx.get(f"{gate_url}/v1/models", headers=AUTH)
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "tiny"
    lowercase = {"authorization": f"bearer {KEY}"}
    assert httpx.get(f"{gate_url}/get_server_info", headers=lowercase).status_code == 200


def test_bodies_and_streams_pass_through(gate_url: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    plain = httpx.post(f"{gate_url}/v1/chat/completions", json=body, headers=AUTH)
    assert plain.status_code == 200 and plain.json()["usage"]["completion_tokens"] == 4
    with httpx.stream(
        "POST",
        f"{gate_url}/v1/chat/completions",
        json={**body, "stream": True},
        headers=AUTH,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1] if line.startswith("data: ")]
    assert len(chunks) >= 4


def test_chunked_request_bodies_pass_through(gate_url: str) -> None:
    body = json.dumps({"text": "hello", "sampling_params": {"max_new_tokens": 2}}).encode()

    def pieces() -> Iterator[bytes]:
        yield body[:5]
        yield body[5:]

    response = httpx.post(f"{gate_url}/generate", content=pieces(), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["meta_info"]["completion_tokens"] == 2


def test_one_request_per_connection_so_each_is_checked(gate_url: str) -> None:
    """A kept-alive connection must not carry an unchecked second request."""
    host, port = gate_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n"
            "GET /get_server_info HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 1
    assert b"connection: close" in received.lower()
    assert b"internal_states" not in received  # the second request never reached the backend


def test_ambiguous_framing_is_refused(gate_url: str) -> None:
    host, port = gate_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST /generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


def test_the_decision() -> None:
    assert GATE.authorized("GET", "/health", None, KEY)
    assert GATE.authorized("HEAD", "/readiness", None, KEY)
    assert GATE.authorized("GET", "/liveness", None, KEY)
    assert not GATE.authorized("GET", "/healthz", None, KEY)  # exact paths, not prefixes
    assert not GATE.authorized("GET", "/v1/models", f"Basic {KEY}", KEY)
    assert not GATE.authorized("GET", "/v1/models", "Bearer", KEY)
    assert GATE.authorized("GET", "/v1/models", f"Bearer {KEY}", KEY)
    with pytest.raises(ValueError):
        GATE.Gate("", "127.0.0.1", 1)
