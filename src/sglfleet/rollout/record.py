"""What a rollout did, per group and step, saved after every step under $SGLFLEET_HOME/rollouts/."""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sglfleet import __version__
from sglfleet.paths import sglfleet_home

# Group results.
PENDING = "pending"
UNCHANGED = "unchanged"
UPDATED = "updated"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
NOT_STARTED = "not_started"

# Exit codes of `sglfleet rollout` (documented in docs/rollout.md).
EXIT_OK = 0
EXIT_ROLLED_BACK = 1
EXIT_ROLLBACK_FAILED = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Step:
    name: str
    started: str
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class GroupRecord:
    name: str
    hosts: list[str]
    rank0_url: str
    routed: bool
    changed: bool | None = None
    changes: list[str] = field(default_factory=list)
    result: str = PENDING
    error: str = ""
    restart_to_ready_s: float | None = None
    seconds: float | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass
class RolloutRecord:
    id: str
    inventory: str
    options: dict[str, Any]
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    user: str = field(default_factory=getpass.getuser)
    sglfleet_version: str = __version__
    result: str = "running"
    exit_code: int | None = None
    message: str = ""
    hint: str = ""
    seconds: float | None = None
    unreachable: list[str] = field(default_factory=list)
    groups: list[GroupRecord] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return rollouts_dir() / f"{self.id}.json"

    def group(self, name: str) -> GroupRecord:
        return next(g for g in self.groups if g.name == name)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["path"] = str(self.path)
        return document

    def save(self) -> None:
        """Atomically: a reader (or a test) never sees half a record."""
        target = self.path
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(temporary, target)


def rollouts_dir() -> Path:
    path = sglfleet_home() / "rollouts"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def history(limit: int = 20) -> list[dict[str, Any]]:
    """The newest rollout records first."""
    paths = sorted(rollouts_dir().glob("*.json"), reverse=True)[:limit]
    return [json.loads(p.read_text()) for p in paths]
