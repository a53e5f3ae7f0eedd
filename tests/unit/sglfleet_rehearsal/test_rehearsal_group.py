"""Multi-node groups: join over --dist-init-addr, readiness, and group-down on member death."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sglfleet_rehearsal.testing import (
    free_port,
    http_status,
    start_engine,
    wait_for_status,
    write_config,
    write_tiny_model,
)

ENV = {
    "SGLFLEET_REHEARSAL_LOAD_SECONDS": "0.3",
    "SGLFLEET_REHEARSAL_TOKEN_DELAY_S": "0",
    "SGLFLEET_REHEARSAL_HEARTBEAT_S": "0.2",
    "SGLFLEET_REHEARSAL_HEARTBEAT_TIMEOUT_S": "1.5",
    "SGLFLEET_REHEARSAL_JOIN_TIMEOUT_S": "20",
}


@dataclass
class Node:
    rank: int
    url: str
    process: subprocess.Popen[bytes]
    log: Path


class Group:
    def __init__(self, tmp: Path, nnodes: int) -> None:
        self.tmp = tmp
        self.nnodes = nnodes
        self.model = write_tiny_model(tmp / "model")
        self.dist_port = free_port()
        self.nodes: dict[int, Node] = {}

    def start(self, rank: int, **env: str) -> Node:
        port = free_port()
        config = write_config(
            self.tmp / f"rank{rank}.yaml",
            {
                "model-path": str(self.model),
                "host": "127.0.0.1",
                "port": port,
                "tp-size": 2 * self.nnodes,
                "nnodes": self.nnodes,
                "node-rank": rank,
                "dist-init-addr": f"127.0.0.1:{self.dist_port}",
                "enable-metrics": True,
            },
        )
        log = self.tmp / f"rank{rank}.log"
        process = start_engine(config, env={**ENV, **env}, log=log)
        node = Node(rank, f"http://127.0.0.1:{port}", process, log)
        self.nodes[rank] = node
        return node

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.process.kill()
            node.process.wait(timeout=10)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    made = Group(tmp_path, nnodes=2)
    yield made
    made.stop_all()


def formed(group: Group) -> tuple[Node, Node]:
    member = group.start(1)  # started first: it must retry until rank 0 listens
    time.sleep(0.5)
    rank0 = group.start(0)
    assert wait_for_status(f"{rank0.url}/health", 200), rank0.log.read_text()
    assert wait_for_status(f"{member.url}/health", 200), member.log.read_text()
    return rank0, member


def test_rank0_waits_for_every_rank_before_ready(group: Group) -> None:
    rank0 = group.start(0)
    assert wait_for_status(f"{rank0.url}/health", 503)
    time.sleep(1.0)  # well past its load time: still not ready without rank 1
    assert http_status(f"{rank0.url}/health") == 503
    member = group.start(1)
    assert wait_for_status(f"{rank0.url}/health", 200), rank0.log.read_text()
    # Like SGLang's dummy health server on non-zero ranks: health only, no API.
    assert wait_for_status(f"{member.url}/health", 200)
    assert http_status(f"{member.url}/health_generate") == 200
    assert http_status(f"{member.url}/v1/models") == 404
    assert http_status(f"{member.url}/metrics") == 200


def test_member_death_takes_rank0_down(group: Group) -> None:
    rank0, member = formed(group)
    member.process.kill()
    assert rank0.process.wait(timeout=10) != 0
    assert "node_rank 1 connection dropped" in rank0.log.read_text()


def test_rank0_death_takes_members_down(group: Group) -> None:
    rank0, member = formed(group)
    rank0.process.kill()
    assert member.process.wait(timeout=10) != 0
    assert "rank 0 went away" in member.log.read_text()


def test_hung_member_is_noticed_by_heartbeat(group: Group) -> None:
    rank0, member = formed(group)
    member.process.send_signal(signal.SIGSTOP)
    try:
        assert rank0.process.wait(timeout=10) != 0
    finally:
        member.process.send_signal(signal.SIGCONT)
    assert "sent no heartbeat" in rank0.log.read_text()


def test_stopping_rank0_stops_the_group_cleanly(group: Group) -> None:
    rank0, member = formed(group)
    member.process.terminate()  # as with SGLang, a member waits for rank 0's shutdown
    time.sleep(0.5)
    assert member.process.poll() is None
    rank0.process.terminate()
    assert rank0.process.wait(timeout=10) == 0
    assert member.process.wait(timeout=10) == 0


def test_member_gives_up_when_rank0_never_comes(group: Group) -> None:
    member = group.start(1, SGLFLEET_REHEARSAL_JOIN_TIMEOUT_S="1")
    assert member.process.wait(timeout=10) != 0
    assert "could not reach rank 0" in member.log.read_text()
