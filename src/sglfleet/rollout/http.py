"""HTTP to the router's worker API and to a group's rank 0 (readiness, in-flight, smoke test).

Verified against sglang-router 0.3.2 running on this machine: `GET /workers` lists workers
(`id`, `url`, `worker_type`, `is_healthy`, `load`), `DELETE /workers/{id}` and `POST /workers`
(`{"url", "api_key", "worker_type", "bootstrap_port"}`) answer 202 and act in the background, and
all three need `Authorization: Bearer <router --api-key>` when the router has a key. The older
`/add_worker` and `/remove_worker` paths answer 404 there.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sglfleet.errors import SglfleetError

_GAUGE = re.compile(r"^sglang:(num_running_reqs|num_queue_reqs)(\{[^}]*\})?\s+([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Worker:
    id: str
    url: str
    worker_type: str
    healthy: bool
    load: int


class RouterClient:
    """The router's runtime worker membership (the SGLang model gateway's `/workers` API)."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._api_key = api_key
        self._timeout = timeout

    def workers(self) -> list[Worker]:
        try:
            response = httpx.get(
                f"{self.url}/workers", headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise SglfleetError(
                f"cannot reach the router at {self.url}: {type(exc).__name__}",
                "check that sglang-router.service runs (`sglfleet status`) and that this machine"
                " reaches the router's port",
            ) from None
        if response.status_code != 200:
            raise SglfleetError(
                f"the router at {self.url} answered {response.status_code} to GET /workers",
                "check that the inventory's sglfleet_api_key is the router's key",
            )
        document: dict[str, Any] = response.json()
        return [
            Worker(
                id=str(w.get("id", "")),
                url=str(w.get("url", "")).rstrip("/"),
                worker_type=str(w.get("worker_type", "regular")),
                healthy=bool(w.get("is_healthy", False)),
                load=int(w.get("load", 0) or 0),
            )
            for w in document.get("workers", [])
        ]

    def find(self, url: str) -> Worker | None:
        url = url.rstrip("/")
        return next((w for w in self.workers() if w.url == url), None)

    def remove(self, url: str, timeout: float = 60.0) -> bool:
        """Take a worker out; True when it was in. Waits until the router no longer lists it."""
        worker = self.find(url)
        if worker is None:
            return False
        response = httpx.delete(
            f"{self.url}/workers/{worker.id}", headers=self._headers, timeout=self._timeout
        )
        if response.status_code not in (200, 202, 204):
            raise SglfleetError(
                f"the router refused to remove {url}: HTTP {response.status_code}",
                "see the router's journal: `sglfleet logs --router`",
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(url) is None:
                return True
            time.sleep(0.5)
        raise SglfleetError(
            f"the router still lists {url} {timeout:.0f}s after removing it",
            "see the router's journal",
        )

    def add(
        self,
        url: str,
        worker_type: str = "regular",
        bootstrap_port: int | None = None,
        timeout: float = 120.0,
    ) -> None:
        """Put a worker (back) in; waits until the router lists it as healthy."""
        existing = self.find(url)
        if existing is None:
            body: dict[str, Any] = {"url": url}
            if self._api_key:
                body["api_key"] = self._api_key
            if worker_type != "regular":
                body["worker_type"] = worker_type
            if bootstrap_port is not None:
                body["bootstrap_port"] = bootstrap_port
            response = httpx.post(
                f"{self.url}/workers", json=body, headers=self._headers, timeout=self._timeout
            )
            if response.status_code not in (200, 201, 202):
                raise SglfleetError(
                    f"the router refused to add {url}: HTTP {response.status_code}",
                    "see the router's journal",
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = self.find(url)
            if worker is not None and worker.healthy:
                return
            time.sleep(0.5)
        raise SglfleetError(
            f"the router did not list {url} as healthy {timeout:.0f}s after adding it",
            "check the group's health (`sglfleet status`) and the router's journal",
        )


def ready(url: str, timeout: float = 10.0) -> bool:
    """SGLang answers /health_generate 200 only after a real generation succeeds."""
    try:
        return httpx.get(f"{url}/health_generate", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def in_flight(url: str, timeout: float = 5.0) -> int | None:
    """Running plus queued requests from rank 0's /metrics; None when it cannot be read."""
    try:
        response = httpx.get(f"{url}/metrics", timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return parse_in_flight(response.text)


def parse_in_flight(text: str) -> int | None:
    total = 0.0
    seen = False
    for line in text.splitlines():
        match = _GAUGE.match(line)
        if match:
            seen = True
            total += float(match.group(3))
    return int(total) if seen else None


def smoke_test(url: str, model: str, api_key: str | None, timeout: float = 300.0) -> str:
    """One real chat completion through rank 0; returns '' on success, else why it failed."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Reply with one word: ready?"}],
        "max_tokens": 8,
        "temperature": 0,
    }
    try:
        response = httpx.post(
            f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        return f"chat completion failed: {type(exc).__name__}"
    if response.status_code != 200:
        return f"chat completion answered HTTP {response.status_code}"
    try:
        choices = response.json().get("choices") or []
        content = choices[0]["message"]["content"] if choices else None
    except (ValueError, KeyError, TypeError, IndexError):
        return "chat completion answered something that is not an OpenAI chat completion"
    if not content:
        return "chat completion returned no text"
    return ""
