"""SIGTERM drains: health turns 503, no new connections, in-flight streams finish, exit 0."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from sglfleet_rehearsal.testing import (
    free_port,
    http_status,
    start_engine,
    wait_for_status,
    write_config,
    write_tiny_model,
)


def test_sigterm_finishes_in_flight_requests_and_exits_zero(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "c.yaml",
        {"model-path": str(write_tiny_model(tmp_path / "m")), "port": port},
    )
    log = tmp_path / "engine.log"
    process = start_engine(
        config,
        env={"SGLFLEET_REHEARSAL_LOAD_SECONDS": "0.2", "SGLFLEET_REHEARSAL_TOKEN_DELAY_S": "0.1"},
        log=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_status(f"{url}/health", 200), log.read_text()
        chunks: list[str] = []
        started = threading.Event()

        def stream() -> None:
            body = {"prompt": "drain", "max_tokens": 20, "stream": True}
            with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        chunks.append(line[6:])
                        started.set()

        client = threading.Thread(target=stream)
        client.start()
        assert started.wait(10)
        process.terminate()
        client.join(timeout=20)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert chunks[-1] == "[DONE]"
    texts = [json.loads(c)["choices"][0]["text"] for c in chunks[:-1]]
    assert len("".join(texts).split()) == 20  # the whole answer, not cut by the shutdown
    assert http_status(f"{url}/health") is None  # listener closed
    assert "SIGTERM received" in log.read_text()
