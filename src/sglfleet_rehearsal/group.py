"""Multi-node group formation over --dist-init-addr, standing in for torch.distributed + NCCL.

Rank 0 listens on the dist-init port (like the TCPStore SGLang's rank 0 binds there); ranks >= 1
connect, retrying until a timeout. Messages are JSON lines: join/welcome/reject, loaded, ready,
hb (heartbeat, both ways), shutdown. Any member that disconnects or stops heartbeating takes
the whole group down: the side that notices calls `on_fatal`, which exits non-zero.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("sglfleet_rehearsal")

Fatal = Callable[[str], None]


@dataclass(frozen=True)
class Timing:
    heartbeat_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    join_timeout_s: float = 600.0
    connect_retry_s: float = 0.5


def parse_address(address: str) -> tuple[str, int]:
    """host:port or [v6]:port -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--dist-init-addr {address!r} is not host:port")
    return host.strip("[]"), int(port)


class _Peer:
    """One JSON-lines connection with a send lock and the time we last heard from it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("r", encoding="utf-8", newline="\n")
        self.lock = threading.Lock()
        self.last_seen = time.monotonic()

    def send(self, message: dict[str, Any]) -> bool:
        data = (json.dumps(message) + "\n").encode("utf-8")
        try:
            with self.lock:
                self.sock.sendall(data)
            return True
        except OSError:
            return False

    def receive(self) -> dict[str, Any] | None:
        try:
            line = self.reader.readline()
        except (OSError, ValueError):
            return None
        if not line:
            return None
        self.last_seen = time.monotonic()
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return None
        return message if isinstance(message, dict) else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class Coordinator:
    """Rank 0: accepts the other ranks, declares the group ready, and watches every member."""

    def __init__(self, address: str, nnodes: int, timing: Timing, on_fatal: Fatal) -> None:
        self.host, self.port = parse_address(address)
        self.nnodes = nnodes
        self.timing = timing
        self.on_fatal = on_fatal
        self.members: dict[int, _Peer] = {}
        self.loaded: set[int] = set()
        self.formed = False
        self.stopping = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: socket.socket | None = None

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Like the TCPStore on rank 0, listen on every interface at the dist-init port.
        server.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", self.port))
        server.listen(64)
        self._server = server
        logger.info(
            "node_rank 0 waiting for %d other node(s) on port %d", self.nnodes - 1, self.port
        )
        threading.Thread(target=self._accept_loop, name="group-accept", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="group-heartbeat", daemon=True).start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while True:
            try:
                sock, peer_address = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=self._serve_member,
                args=(_Peer(sock), peer_address),
                name="group-member",
                daemon=True,
            ).start()

    def _serve_member(self, peer: _Peer, address: Any) -> None:
        hello = peer.receive()
        if not hello or hello.get("type") != "join":
            peer.close()
            return
        rank = hello.get("rank")
        reason = None
        with self._lock:
            if hello.get("nnodes") != self.nnodes:
                reason = f"--nnodes {hello.get('nnodes')} differs from rank 0's {self.nnodes}"
            elif not isinstance(rank, int) or not 1 <= rank < self.nnodes:
                reason = f"--node-rank {rank} is outside 1..{self.nnodes - 1}"
            elif self.formed:
                reason = "the group is already formed; restart every member together"
            elif rank in self.members:
                reason = f"node_rank {rank} has already joined"
            else:
                self.members[rank] = peer
                self._changed.notify_all()
        if reason is not None or not isinstance(rank, int):
            logger.error("rejected a join from %s: %s", address, reason)
            peer.send({"type": "reject", "reason": reason})
            peer.close()
            return
        peer.send({"type": "welcome", "nnodes": self.nnodes})
        logger.info("node_rank %d joined from %s", rank, address[0])
        while True:
            message = peer.receive()
            if message is None:
                break
            if message.get("type") == "loaded":
                with self._lock:
                    self.loaded.add(rank)
                    self._changed.notify_all()
        if not self.stopping:
            self.on_fatal(f"node_rank {rank} connection dropped: taking the group down")

    def _heartbeat_loop(self) -> None:
        while not self.stopping:
            time.sleep(self.timing.heartbeat_s)
            now = time.monotonic()
            with self._lock:
                members = dict(self.members)
            for rank, peer in members.items():
                peer.send({"type": "hb"})
                if now - peer.last_seen > self.timing.heartbeat_timeout_s and not self.stopping:
                    self.on_fatal(
                        f"node_rank {rank} sent no heartbeat for "
                        f"{self.timing.heartbeat_timeout_s:.0f}s: taking the group down"
                    )

    def wait_formed(self) -> bool:
        """Block until every rank has joined and loaded (or the join timeout passes)."""
        deadline = time.monotonic() + self.timing.join_timeout_s
        with self._lock:
            while len(self.loaded) < self.nnodes - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 1.0))
            self.formed = True
            members = list(self.members.values())
        for peer in members:
            peer.send({"type": "ready"})
        logger.info("all %d nodes joined and loaded", self.nnodes)
        return True

    def shutdown_members(self) -> None:
        """Rank 0's ShutdownReq broadcast: members exit cleanly."""
        self.stopping = True
        with self._lock:
            members = list(self.members.values())
        for peer in members:
            peer.send({"type": "shutdown"})
            peer.close()
        if self._server is not None:
            self._server.close()


class Member:
    """A rank >= 1: joins rank 0, reports loaded, then follows rank 0 until it goes away."""

    def __init__(
        self, address: str, rank: int, nnodes: int, timing: Timing, on_fatal: Fatal
    ) -> None:
        self.host, self.port = parse_address(address)
        self.rank = rank
        self.nnodes = nnodes
        self.timing = timing
        self.on_fatal = on_fatal
        self.ready = threading.Event()
        self.shutdown = threading.Event()
        self._peer: _Peer | None = None

    def join(self) -> None:
        """Connect to rank 0 (retrying until the join timeout) and get welcomed."""
        deadline = time.monotonic() + self.timing.join_timeout_s
        attempts = 0
        while True:
            attempts += 1
            try:
                sock = socket.create_connection((self.host, self.port), timeout=5)
                break
            except OSError as error:
                if time.monotonic() >= deadline:
                    self.on_fatal(
                        f"could not reach rank 0 at {self.host}:{self.port} within "
                        f"{self.timing.join_timeout_s:.0f}s ({error})"
                    )
                    return
                if attempts == 1 or attempts % 20 == 0:
                    logger.info("waiting for rank 0 at %s:%d (%s)", self.host, self.port, error)
                time.sleep(self.timing.connect_retry_s)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = _Peer(sock)
        peer.send({"type": "join", "rank": self.rank, "nnodes": self.nnodes})
        answer = peer.receive()
        if not answer or answer.get("type") != "welcome":
            reason = answer.get("reason") if answer else "connection closed"
            peer.close()
            self.on_fatal(f"rank 0 refused node_rank {self.rank}: {reason}")
            return
        self._peer = peer
        logger.info("node_rank %d joined rank 0 at %s:%d", self.rank, self.host, self.port)
        threading.Thread(target=self._read_loop, name="group-reader", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="group-heartbeat", daemon=True).start()

    def report_loaded(self) -> None:
        if self._peer is not None:
            self._peer.send({"type": "loaded", "rank": self.rank})

    def _read_loop(self) -> None:
        assert self._peer is not None
        while True:
            message = self._peer.receive()
            if message is None:
                break
            kind = message.get("type")
            if kind == "ready":
                self.ready.set()
            elif kind == "shutdown":
                logger.info("rank 0 sent shutdown; node_rank %d exiting", self.rank)
                self.shutdown.set()
                return
        if not self.shutdown.is_set():
            self.on_fatal("rank 0 went away: taking this node down")

    def _heartbeat_loop(self) -> None:
        assert self._peer is not None
        while not self.shutdown.is_set():
            time.sleep(self.timing.heartbeat_s)
            self._peer.send({"type": "hb"})
            silent = time.monotonic() - self._peer.last_seen
            if silent > self.timing.heartbeat_timeout_s and not self.shutdown.is_set():
                self.on_fatal(
                    f"rank 0 sent no heartbeat for {self.timing.heartbeat_timeout_s:.0f}s"
                )
                return
