"""The rehearsal engine's HTTP surface, against a real engine process on a localhost port."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sglfleet_rehearsal import REHEARSAL_LABEL
from sglfleet_rehearsal.testing import (
    free_port,
    http_status,
    start_engine,
    wait_for_status,
    write_config,
    write_tiny_model,
)

API_KEY = "test-key-5f1c"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    first_health: int | None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("http")
    port = free_port()
    config = write_config(
        tmp / "server-args.yaml",
        {
            "model-path": str(write_tiny_model(tmp / "model")),
            "served-model-name": "tiny",
            "host": "127.0.0.1",
            "port": port,
            "enable-metrics": True,
            "api-key": API_KEY,
        },
    )
    log = tmp / "engine.log"
    process = start_engine(
        config,
        env={"SGLFLEET_REHEARSAL_LOAD_SECONDS": "1.5", "SGLFLEET_REHEARSAL_TOKEN_DELAY_S": "0.005"},
        log=log,
    )
    url = f"http://127.0.0.1:{port}"
    first = None
    deadline = time.monotonic() + 15
    while first is None and time.monotonic() < deadline and process.poll() is None:
        first = http_status(f"{url}/health")
        time.sleep(0.02)
    assert wait_for_status(f"{url}/health", 200), log.read_text()
    yield Running(url, process, log, first)
    process.terminate()
    process.wait(timeout=15)


def sse_events(response: httpx.Response) -> list[Any]:
    events: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_health_is_503_while_loading_then_200(engine: Running) -> None:
    assert engine.first_health == 503
    assert http_status(f"{engine.url}/health") == 200
    assert http_status(f"{engine.url}/health_generate") == 200


def test_api_key_required_except_health_and_metrics(engine: Running) -> None:
    assert httpx.get(f"{engine.url}/v1/models").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(f"{engine.url}/v1/models", headers=wrong).status_code == 401
    assert httpx.get(f"{engine.url}/v1/models", headers=AUTH).status_code == 200
    assert httpx.get(f"{engine.url}/metrics").status_code == 200
    assert httpx.get(f"{engine.url}/health").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/tiny",
        "/get_server_info",
        "/server_info",
        "/get_model_info",
        "/model_info",
        "/ping",
    ],
)
def test_info_routes_need_the_key_as_in_sglang(engine: Running, path: str) -> None:
    """All are AuthLevel.NORMAL in SGLang 0.5.23: with --api-key they answer 401 without it."""
    assert httpx.get(engine.url + path).status_code == 401
    assert httpx.get(engine.url + path, headers=AUTH).status_code == 200


def test_options_passes_the_key_check_as_in_sglang(engine: Running) -> None:
    """SGLang 0.5.23's decide_request_auth allows OPTIONS; CORS answers preflights, else 405."""
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}
    answer = httpx.options(f"{engine.url}/v1/chat/completions", headers=preflight)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://ui.example"
    assert answer.content == b"OK"
    plain = httpx.options(f"{engine.url}/v1/models")
    assert plain.status_code == 405 and plain.json() == {"detail": "Method Not Allowed"}
    assert httpx.options(f"{engine.url}/no/such/path").status_code == 404
    assert b"data" not in plain.content  # nothing of the model list leaks


def test_models_and_info(engine: Running) -> None:
    models = httpx.get(f"{engine.url}/v1/models", headers=AUTH).json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "tiny"
    assert models["data"][0]["max_model_len"] == 4096
    info = httpx.get(f"{engine.url}/get_model_info", headers=AUTH).json()
    assert info["architectures"] == ["Qwen3ForCausalLM"]
    assert info["is_generation"] is True
    server = httpx.get(f"{engine.url}/get_server_info", headers=AUTH).json()
    assert server["version"] == "0.5.23"
    assert server["served_model_name"] == "tiny"
    assert server["api_key"] == "<redacted>"
    assert httpx.get(f"{engine.url}/no/such/path", headers=AUTH).status_code == 404


def test_chat_completion_is_deterministic_labelled_and_honours_max_tokens(
    engine: Running,
) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello there"}]}
    first = httpx.post(f"{engine.url}/v1/chat/completions", json=body, headers=AUTH).json()
    again = httpx.post(f"{engine.url}/v1/chat/completions", json=body, headers=AUTH).json()
    text = first["choices"][0]["message"]["content"]
    assert text == again["choices"][0]["message"]["content"]
    assert text.startswith(REHEARSAL_LABEL)
    assert first["object"] == "chat.completion"
    assert first["choices"][0]["finish_reason"] == "stop"
    limited = httpx.post(
        f"{engine.url}/v1/chat/completions", json={**body, "max_tokens": 3}, headers=AUTH
    ).json()
    assert limited["usage"]["completion_tokens"] == 3
    assert limited["usage"]["prompt_tokens"] == 2
    assert limited["choices"][0]["finish_reason"] == "length"
    assert len(limited["choices"][0]["message"]["content"].split()) == 3


def test_chat_completion_streaming(engine: Running) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "stream please"}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST", f"{engine.url}/v1/chat/completions", json=body, headers=AUTH
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(content.split()) == 5
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_completions_plain_and_streaming(engine: Running) -> None:
    body = {"model": "tiny", "prompt": "once upon", "max_tokens": 4}
    plain = httpx.post(f"{engine.url}/v1/completions", json=body, headers=AUTH).json()
    assert plain["object"] == "text_completion"
    assert len(plain["choices"][0]["text"].split()) == 4
    with httpx.stream(
        "POST", f"{engine.url}/v1/completions", json={**body, "stream": True}, headers=AUTH
    ) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    streamed = "".join(e["choices"][0]["text"] for e in events[:-1] if e["choices"])
    assert streamed == plain["choices"][0]["text"]


def test_native_generate(engine: Running) -> None:
    body = {"text": "native", "sampling_params": {"max_new_tokens": 2}}
    result = httpx.post(f"{engine.url}/generate", json=body, headers=AUTH).json()
    assert result["meta_info"]["completion_tokens"] == 2
    assert result["meta_info"]["finish_reason"] == {"type": "length", "length": 2}
    with httpx.stream(
        "POST", f"{engine.url}/generate", json={**body, "stream": True}, headers=AUTH
    ) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert events[-2]["text"] == result["text"]  # native streaming text is cumulative


def test_bad_request_is_400(engine: Running) -> None:
    response = httpx.post(
        f"{engine.url}/v1/chat/completions",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["object"] == "error"


def test_metrics_use_sglang_names_and_count(engine: Running) -> None:
    def sample(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} missing")

    before = httpx.get(f"{engine.url}/metrics").text
    httpx.post(
        f"{engine.url}/v1/completions",
        json={"prompt": "count me", "max_tokens": 3},
        headers=AUTH,
    )
    after = httpx.get(f"{engine.url}/metrics").text
    for name in (
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:token_usage",
        "sglang:gen_throughput",
        "sglang:time_to_first_token_seconds_bucket",
        "sglang:e2e_request_latency_seconds_count",
    ):
        assert name + "{" in after, name
    assert "# TYPE sglang:time_to_first_token_seconds histogram" in after
    assert 'model_name="tiny"' in after
    delta = sample(after, "sglang:generation_tokens_total") - sample(
        before, "sglang:generation_tokens_total"
    )
    assert delta == 3
    assert sample(after, "sglang:num_requests_total") > sample(before, "sglang:num_requests_total")


def test_log_never_contains_the_api_key(engine: Running) -> None:
    log = engine.log.read_text()
    assert "ready to roll" in log
    assert API_KEY not in log
