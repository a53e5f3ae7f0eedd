"""SGLang's HTTP surface, served by the standard library with deterministic rehearsal output.

Two modes, as in SGLang 0.5.23: rank 0 serves the full API (OpenAI and native endpoints,
/metrics, server and model info, API-key checks); ranks >= 1 serve only the dummy health server
SGLang starts there (/ping, /health, /health_generate, and /metrics with --enable-metrics).
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sglfleet_rehearsal.generation import chat_prompt_text, count_tokens, plan_tokens
from sglfleet_rehearsal.metrics import Metrics
from sglfleet_rehearsal.weights import ModelInfo
from sglfleet_sglang import SGLANG_VERSION

logger = logging.getLogger("sglfleet_rehearsal")

# Paths SGLang serves without an API key (k8s probes, Prometheus): matched by prefix there too.
OPEN_PREFIXES = ("/health", "/ready", "/metrics")
CORS_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
# Routes this engine serves on rank 0 (an OPTIONS on them is 405, elsewhere 404, as FastAPI does).
KNOWN_PATHS = frozenset(
    {
        "/health",
        "/health_generate",
        "/ready",
        "/ping",
        "/metrics",
        "/v1/models",
        "/get_model_info",
        "/model_info",
        "/get_server_info",
        "/server_info",
        "/generate",
        "/v1/completions",
        "/v1/chat/completions",
    }
)
SECRET_FIELDS = ("api_key", "admin_api_key", "ssl_keyfile_password", "watermark_config")
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


@dataclass
class EngineState:
    """What the handlers read: parsed args, model facts, readiness, drain bookkeeping."""

    args: argparse.Namespace
    model: ModelInfo
    metrics: Metrics
    token_delay_s: float
    full_api: bool = True
    ready: threading.Event = field(default_factory=threading.Event)
    draining: bool = False
    started: float = field(default_factory=time.time)
    _inflight: int = 0
    _inflight_changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def served_model_name(self) -> str:
        return str(self.args.served_model_name or self.args.model_path)

    @property
    def context_length(self) -> int | None:
        value = self.args.context_length or self.model.max_position_embeddings
        return int(value) if value is not None else None

    def healthy(self) -> bool:
        return self.ready.is_set() and not self.draining

    def enter(self) -> None:
        with self._inflight_changed:
            self._inflight += 1

    def leave(self) -> None:
        with self._inflight_changed:
            self._inflight -= 1
            self._inflight_changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for in-flight requests to finish; False if some remain after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._inflight_changed:
            while self._inflight > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                logger.info("Gracefully exiting... Remaining number of requests %d", self._inflight)
                self._inflight_changed.wait(min(remaining, 1.0))
        return True

    def server_info(self) -> dict[str, Any]:
        info = {
            key: ("<redacted>" if key in SECRET_FIELDS and value is not None else value)
            for key, value in vars(self.args).items()
        }
        info.update(
            {
                "startup_time": self.started,
                "internal_states": [
                    {"last_gen_throughput": self.metrics.gauges["sglang:gen_throughput"]}
                ],
                "version": SGLANG_VERSION,
                "frontend": "python",
                "rehearsal": True,
            }
        )
        return info

    def model_info(self) -> dict[str, Any]:
        return {
            "model_path": self.args.model_path,
            "served_model_name": self.served_model_name,
            "tokenizer_path": self.args.tokenizer_path or self.args.model_path,
            "is_generation": True,
            "preferred_sampling_params": self.args.preferred_sampling_params,
            "weight_version": self.args.weight_version,
            "load_format": self.args.load_format,
            "reasoning_parser": self.args.reasoning_parser,
            "tool_call_parser": self.args.tool_call_parser,
            "disaggregation_mode": self.args.disaggregation_mode,
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": self.model.model_type,
            "architectures": self.model.architectures,
            "rehearsal": True,
        }


class BadRequest(Exception):
    pass


def _openai_error(message: str, status: int) -> dict[str, Any]:
    return {
        "object": "error",
        "message": message,
        "type": "BadRequestError" if status == 400 else "ServiceUnavailableError",
        "param": None,
        "code": status,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sglfleet-rehearsal"
    sys_version = ""
    server: RehearsalServer

    # --- plumbing ---

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s - %s", self.client_address[0], format % args)

    @property
    def state(self) -> EngineState:
        return self.server.state

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"))

    def _not_found(self) -> None:
        self._json(404, {"detail": "Not Found"})

    def _read_body(self) -> bytes:
        """Content-Length or chunked (uvicorn, in front of real SGLang, accepts both)."""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            raw = b""
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                raw += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return raw
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_json(self) -> dict[str, Any]:
        raw = self._read_body()
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as error:
            raise BadRequest(f"Invalid JSON body: {error}") from error
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        return body

    def _authorized(self, path: str) -> bool:
        key = self.state.args.api_key
        if not key or path.startswith(OPEN_PREFIXES):
            return True
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode("utf-8"), str(key).encode("utf-8")
        )

    def _health(self) -> None:
        self._send(200 if self.state.healthy() else 503)

    def _metrics(self) -> None:
        if not self.state.args.enable_metrics:
            self._not_found()
            return
        body = self.state.metrics.render().encode("utf-8")
        self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")

    # --- dispatch ---

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_OPTIONS(self) -> None:
        """SGLang's key check lets OPTIONS through (srt/utils/auth.py); its CORS layer answers."""
        path = self.path.split("?", 1)[0]
        origin = self.headers.get("Origin")
        if not self.state.full_api:
            self._not_found()
        elif origin and self.headers.get("Access-Control-Request-Method"):
            # Starlette's CORSMiddleware with allow_origins/methods/headers "*" and credentials.
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", CORS_METHODS)
            requested = self.headers.get("Access-Control-Request-Headers")
            if requested:
                self.send_header("Access-Control-Allow-Headers", requested)
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Vary", "Origin")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
        elif path in KNOWN_PATHS:
            self._json(405, {"detail": "Method Not Allowed"})
        else:
            self._not_found()

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if not self.state.full_api:
            self._dummy_route(path)
            return
        if not self._authorized(path):
            self._json(401, {"error": "Unauthorized"})
            return
        try:
            self._route(method, path)
        except BadRequest as error:
            self._json(400, _openai_error(str(error), 400))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _dummy_route(self, path: str) -> None:
        if path in ("/ping", "/health", "/health_generate"):
            self._send(200)
        elif path.startswith("/metrics"):
            self._metrics()
        else:
            self._not_found()

    def _route(self, method: str, path: str) -> None:
        state = self.state
        if method == "GET":
            if path in ("/health", "/health_generate", "/ready", "/ping"):
                self._health()
            elif path.startswith("/metrics"):
                self._metrics()
            elif path == "/v1/models":
                self._json(200, {"object": "list", "data": [self._model_card()]})
            elif path.startswith("/v1/models/"):
                name = path[len("/v1/models/") :]
                if name != state.served_model_name:
                    self._json(
                        404,
                        {
                            "error": {
                                "message": f"The model '{name}' does not exist",
                                "type": "invalid_request_error",
                                "param": "model",
                                "code": "model_not_found",
                            }
                        },
                    )
                else:
                    self._json(200, self._model_card())
            elif path in ("/get_model_info", "/model_info"):
                self._json(200, state.model_info())
            elif path in ("/get_server_info", "/server_info"):
                self._json(200, state.server_info())
            else:
                self._not_found()
            return
        routes = {
            "/generate": self._generate,
            "/v1/completions": self._completions,
            "/v1/chat/completions": self._chat_completions,
        }
        handler = routes.get(path)
        if handler is None or (method == "PUT" and path != "/generate"):
            self._not_found()
            return
        if not state.healthy():
            reason = "draining" if state.draining else "loading"
            self._json(503, _openai_error(f"The server is {reason}.", 503))
            return
        state.enter()
        try:
            handler(self._read_json())
        finally:
            state.leave()

    def _model_card(self) -> dict[str, Any]:
        name = self.state.served_model_name
        return {
            "id": name,
            "object": "model",
            "created": int(self.state.started),
            "owned_by": "sglang",
            "root": name,
            "parent": None,
            "max_model_len": self.state.context_length,
        }

    # --- generation ---

    def _tokens(self, prompt: str, max_tokens: int | None) -> tuple[Iterator[str], list[str], str]:
        """Yield token texts at the configured pace, keeping metrics as SGLang would."""
        tokens, finish = plan_tokens(prompt, max_tokens)
        return self._paced(prompt, tokens), tokens, finish

    def _paced(self, prompt: str, tokens: list[str]) -> Iterator[str]:
        state = self.state
        prompt_tokens = count_tokens(prompt)
        state.metrics.request_started(prompt_tokens)
        start = time.monotonic()
        ttft: float | None = None
        sent = 0
        aborted = True
        try:
            for token in tokens:
                if state.token_delay_s > 0:
                    time.sleep(state.token_delay_s)
                if ttft is None:
                    ttft = time.monotonic() - start
                state.metrics.tokens_generated(1)
                sent += 1
                yield token
            aborted = False
        finally:
            state.metrics.request_finished(
                prompt_tokens=prompt_tokens,
                completion_tokens=sent,
                ttft=ttft,
                e2e=time.monotonic() - start,
                aborted=aborted,
            )

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, payload: Any) -> None:
        data = b"data: " + (
            payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode()
        )
        data += b"\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    @staticmethod
    def _max_tokens(body: dict[str, Any], *keys: str, default: int | None) -> int | None:
        for key in keys:
            value = body.get(key)
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise BadRequest(f"{key} must be a non-negative integer")
                return value
        return default

    def _usage(self, prompt: str, completion_tokens: int) -> dict[str, Any]:
        prompt_tokens = count_tokens(prompt)
        return {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
            "prompt_tokens_details": None,
        }

    def _include_usage(self, body: dict[str, Any]) -> bool:
        options = body.get("stream_options")
        if isinstance(options, dict) and "include_usage" in options:
            return bool(options["include_usage"])
        return bool(self.state.args.stream_response_default_include_usage)

    def _chat_completions(self, body: dict[str, Any]) -> None:
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise BadRequest("messages must be a non-empty list")
        prompt = chat_prompt_text(body["messages"])
        limit = self._max_tokens(body, "max_completion_tokens", "max_tokens", default=None)
        stream, tokens, finish = self._tokens(prompt, limit)
        request_id = uuid.uuid4().hex
        created = int(time.time())
        model = body.get("model") or self.state.served_model_name
        if not body.get("stream"):
            text = "".join(stream)
            self._json(
                200,
                {
                    "id": request_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": text,
                                "reasoning_content": None,
                                "tool_calls": None,
                            },
                            "logprobs": None,
                            "finish_reason": finish,
                            "matched_stop": None,
                        }
                    ],
                    "usage": self._usage(prompt, len(tokens)),
                },
            )
            return

        def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
            return {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
                ],
            }

        self._start_stream()
        self._event(chunk({"role": "assistant", "content": ""}, None))
        for token in stream:
            self._event(chunk({"content": token}, None))
        self._event(chunk({}, finish))
        if self._include_usage(body):
            usage_chunk = chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = self._usage(prompt, len(tokens))
            self._event(usage_chunk)
        self._end_stream()

    def _completions(self, body: dict[str, Any]) -> None:
        raw_prompt = body.get("prompt")
        if isinstance(raw_prompt, str):
            prompts = [raw_prompt]
        elif (
            isinstance(raw_prompt, list)
            and raw_prompt
            and all(isinstance(p, int) for p in raw_prompt)
        ):
            prompts = [" ".join(str(p) for p in raw_prompt)]
        elif (
            isinstance(raw_prompt, list)
            and raw_prompt
            and all(isinstance(p, str) for p in raw_prompt)
        ):
            prompts = list(raw_prompt)
        else:
            raise BadRequest("prompt must be a string, a list of strings or of token ids")
        limit = self._max_tokens(body, "max_tokens", default=DEFAULT_COMPLETION_MAX_TOKENS)
        request_id = uuid.uuid4().hex
        created = int(time.time())
        model = body.get("model") or self.state.served_model_name
        streaming = bool(body.get("stream"))
        if streaming:
            self._start_stream()
        choices = []
        usage = {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0}
        for index, prompt in enumerate(prompts):
            stream, tokens, finish = self._tokens(prompt, limit)
            for key, value in self._usage(prompt, len(tokens)).items():
                if isinstance(value, int):
                    usage[key] += value
            if not streaming:
                choices.append(
                    {
                        "index": index,
                        "text": "".join(stream),
                        "logprobs": None,
                        "finish_reason": finish,
                        "matched_stop": None,
                    }
                )
                continue
            for token in stream:
                self._event(self._completion_chunk(request_id, created, model, index, token, None))
            self._event(self._completion_chunk(request_id, created, model, index, "", finish))
        if streaming:
            if self._include_usage(body):
                self._event(
                    {
                        "id": request_id,
                        "object": "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": {**usage, "prompt_tokens_details": None},
                    }
                )
            self._end_stream()
            return
        self._json(
            200,
            {
                "id": request_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": choices,
                "usage": {**usage, "prompt_tokens_details": None},
            },
        )

    @staticmethod
    def _completion_chunk(
        request_id: str, created: int, model: str, index: int, text: str, reason: str | None
    ) -> dict[str, Any]:
        return {
            "id": request_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": reason}],
        }

    def _generate(self, body: dict[str, Any]) -> None:
        """SGLang's native /generate: cumulative text per streamed chunk, meta_info."""
        text = body.get("text")
        if isinstance(text, list):
            raise BadRequest("the rehearsal engine's /generate takes one prompt per request")
        if text is None and isinstance(body.get("input_ids"), list):
            text = " ".join(str(i) for i in body["input_ids"])
        if not isinstance(text, str):
            raise BadRequest("text (or input_ids) is required")
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise BadRequest("sampling_params must be an object")
        limit = self._max_tokens(params, "max_new_tokens", default=128)
        stream, tokens, finish = self._tokens(text, limit)
        request_id = body.get("rid") or uuid.uuid4().hex
        start = time.monotonic()

        def output(so_far: str, count: int, reason: str | None) -> dict[str, Any]:
            finish_reason: dict[str, Any] | None = None
            if reason == "length":
                finish_reason = {"type": "length", "length": count}
            elif reason == "stop":
                finish_reason = {"type": "stop", "matched": None}
            return {
                "text": so_far,
                "output_ids": list(range(count)),
                "meta_info": {
                    "id": request_id,
                    "finish_reason": finish_reason,
                    "prompt_tokens": count_tokens(text),
                    "completion_tokens": count,
                    "cached_tokens": 0,
                    "e2e_latency": time.monotonic() - start,
                    "rehearsal": True,
                },
            }

        if not body.get("stream"):
            self._json(200, output("".join(stream), len(tokens), finish))
            return
        self._start_stream()
        so_far = ""
        for count, token in enumerate(stream, start=1):
            so_far += token
            self._event(output(so_far, count, finish if count == len(tokens) else None))
        if not tokens:
            self._event(output("", 0, finish))
        self._end_stream()


class RehearsalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: EngineState) -> None:
        self.state = state
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
