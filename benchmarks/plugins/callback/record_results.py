"""Benchmark-only callback: store every task result of a run, keyed for replay.

Enabled by benchmarks/controller_scale.py's `record` step (never by ansible.cfg). Each result is
kept under a key that survives a different inventory (play name, role, task name, action) per
host, and loop items in their order. At the end of the run it writes the file named by
SGLFLEET_RECORD_PATH; benchmarks/controller_scale.py redacts and trims it into the fixture.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: store task results per host for the controller-scale replay
description: Writes every task result by (play, role, task, action) and host to a json file.
requirements: [enabled in the benchmark's own environment]
"""


# The key function is shared with the replay strategy (plugins are loaded as loose files).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from replay_keys import task_key  # noqa: E402


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        # host -> key -> {"result": ..., "items": [...]}
        self._results: dict[str, dict[str, dict[str, Any]]] = {}
        self._order: list[str] = []

    def _entry(self, result: Any) -> dict[str, Any]:
        key = task_key(result._task)
        host = result._host.get_name()
        per_host = self._results.setdefault(host, {})
        if key not in per_host:
            per_host[key] = {"items": []}
            if key not in self._order:
                self._order.append(key)
        return per_host[key]

    def _store(self, result: Any) -> None:
        entry = self._entry(result)
        # A key met twice on one host (a task file imported twice) keeps its first result.
        entry.setdefault("result", dict(result._result))

    def _store_item(self, result: Any) -> None:
        self._entry(result)["items"].append(dict(result._result))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._store(result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._store(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._store(result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._store_item(result)

    def v2_runner_item_on_skipped(self, result: Any) -> None:
        self._store_item(result)

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._store_item(result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        path = os.environ["SGLFLEET_RECORD_PATH"]
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(
                {"keys": self._order, "hosts": self._results, "recap": recap},
                handle,
                default=str,
            )
