"""Keep the controller's forks cheap: freeze the main process's objects before workers fork.

Ansible forks one worker per host and task from its main process. When a worker's own
allocations trigger a full garbage collection, CPython walks every object the worker inherited and
writes to its header, so the kernel copies the parent's heap page by page: the cost of each of the
hosts x tasks workers grows with the main process's heap, which grows with the inventory (facts,
registered results, the plan). `gc.freeze()` (CPython's documented remedy for fork-based servers)
moves the objects that exist at a task's start into a permanent generation that collections skip,
in the workers and in the main process alike. Objects are still freed by reference counting; only
cyclic garbage frozen while alive waits for the next play start, where the main process unfreezes,
collects and freezes again (one full collection per play).

Measured by benchmarks/controller_scale.py (docs/benchmarks.md, "Controller scale"). Turn it off
with SGLFLEET_GC_FREEZE=0.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]

DOCUMENTATION = """
name: sglfleet_gc
type: aggregate
short_description: freeze the controller's heap before Ansible forks its workers
description:
  - At each play start, collect garbage once and freeze the surviving objects; at each task start,
    freeze what was allocated since. Workers forked for the task then skip the inherited heap in
    their garbage collections, so their cost stops growing with the inventory.
  - Set SGLFLEET_GC_FREEZE=0 to turn it off.
requirements:
  - enabled in callbacks_enabled (sglfleet's ansible.cfg and CLI runner do)
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sglfleet_gc"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._enabled = os.environ.get("SGLFLEET_GC_FREEZE", "1") != "0"

    def v2_playbook_on_play_start(self, play: Any) -> None:
        if self._enabled:
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        if self._enabled:
            gc.freeze()

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._enabled:
            gc.unfreeze()
