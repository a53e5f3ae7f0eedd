"""The cluster endpoint's API-key gate: every route needs the key, except liveness/readiness probes.

sglang-router 0.3.2 (its last release) serves /v1/models, /get_server_info, /get_model_info... on
its public routes without checking `--api-key` (only inference and worker routes check it). The
launcher therefore binds the router to 127.0.0.1 and puts this gate on the public address: one
request per connection (`Connection: close` both ways), so every request is checked, and bodies
and streamed answers (SSE) pass through byte for byte. Standard library only (asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
import traceback
from collections.abc import Callable

logger = logging.getLogger("sglfleet-router-gate")

# Kubernetes-style probes and load balancers carry no secret (docs/security.md lists them).
OPEN_PATHS = frozenset({"/health", "/health_generate", "/liveness", "/readiness"})
MAX_HEAD_BYTES = 64 * 1024
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"trailer"}
_UNAUTHORIZED = b'{"error":"Unauthorized"}'


def authorized(method: str, path: str, authorization: str | None, api_key: str) -> bool:
    """The whole decision: an open probe, or `Authorization: Bearer <key>` (constant time)."""
    if method in ("GET", "HEAD") and path in OPEN_PATHS:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8"), api_key.encode("utf-8")
    )


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + body
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()


async def _body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int | None, chunked: bool
) -> None:
    """Forward exactly one request body: Content-Length bytes, or chunks up to the last one."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        if chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                writer.write(size_line)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                        writer.write(trailer)
                    writer.write(b"\r\n")
                    break
                writer.write(await reader.readexactly(size + 2))
                await writer.drain()
        else:
            remaining = length or 0
            while remaining > 0:
                chunk = await reader.read(min(remaining, 65536))
                if not chunk:
                    break
                writer.write(chunk)
                remaining -= len(chunk)
                await writer.drain()
        await writer.drain()


async def _response_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pass the answer's head on with `connection: close`, so the client opens a new connection."""
    with contextlib.suppress(
        ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
    ):
        head = await reader.readuntil(b"\r\n\r\n")
        status, *lines = head[:-4].split(b"\r\n")
        kept = [
            line for line in lines if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP
        ]
        writer.write(b"\r\n".join([status, *kept, b"connection: close"]) + b"\r\n\r\n")
        await writer.drain()


class Gate:
    def __init__(self, api_key: str, upstream_host: str, upstream_port: int) -> None:
        if not api_key:
            raise ValueError("the gate needs an API key")
        self.api_key = api_key
        self.upstream = (upstream_host, upstream_port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            writer.write(
                _response(b"431 Request Header Fields Too Large", b'{"error":"too large"}')
            )
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        request_line, *header_lines = head[:-4].split(b"\r\n")
        parts = request_line.split(b" ")
        if len(parts) != 3:
            writer.write(_response(b"400 Bad Request", b'{"error":"Bad Request"}'))
            return
        method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        headers = []
        authorization = None
        length: int | None = None
        chunked = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"authorization":
                authorization = value.strip().decode("latin-1")
            elif key == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
            elif key == b"transfer-encoding":
                chunked = value.strip().lower() == b"chunked"
            if key not in _HOP_BY_HOP:
                headers.append(line)
        if chunked and length is not None:  # ambiguous framing: the classic smuggling shape
            writer.write(_response(b"400 Bad Request", b'{"error":"Bad Request"}'))
            return
        path = target.split("?", 1)[0]
        if not authorized(method, path, authorization, self.api_key):
            writer.write(_response(b"401 Unauthorized", _UNAUTHORIZED))
            await writer.drain()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.write(_response(b"502 Bad Gateway", b'{"error":"router unavailable"}'))
            return
        up_writer.write(b"\r\n".join([request_line, *headers, b"connection: close"]) + b"\r\n\r\n")
        # Only this request's body goes up: bytes after it (a pipelined request) are never sent.
        upload = asyncio.ensure_future(_body(reader, up_writer, length, chunked))
        try:
            await _response_head(up_reader, writer)
            await _pipe(up_reader, writer)  # the router closes after its answer
        finally:
            upload.cancel()
            with contextlib.suppress(ConnectionError):
                up_writer.close()


async def serve(gate: Gate, host: str, port: int) -> None:
    server = await asyncio.start_server(gate.handle, host, port, limit=MAX_HEAD_BYTES)
    logger.info("API-key gate on %s:%d in front of %s:%d", host, port, *gate.upstream)
    async with server:
        await server.serve_forever()


def run_gate_with_router(
    api_key: str, host: str, port: int, upstream_port: int, start_router: Callable[[], object]
) -> None:
    """Fork the router (`start_router`), gate in this process; either one ending ends both."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    child = os.fork()
    if child == 0:  # the router: sglang_router's main() blocks in Rust
        code = 1
        try:
            start_router()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
        gate_task = asyncio.ensure_future(
            serve(Gate(api_key, "127.0.0.1", upstream_port), host, port)
        )
        router_exit = loop.run_in_executor(None, os.waitpid, child, 0)
        done, _ = await asyncio.wait(
            [gate_task, stop, router_exit], return_when=asyncio.FIRST_COMPLETED
        )
        if router_exit in done:
            logger.error("the router exited; stopping the gate so that systemd restarts both")
            raise SystemExit(1)
        os.kill(child, signal.SIGTERM)
        await router_exit  # the router drains; TimeoutStopSec bounds it
        gate_task.cancel()
        if gate_task in done:
            gate_task.result()  # e.g. the public port was taken: fail the unit with that error

    asyncio.run(main())
