"""Count, per host, the results that changed or failed, for the one-read-per-role actions.

A role's `sglfleet_node_files` read (its files and units) stays true only as long as nothing changes
on the host: a package upgrade may restart a service, a handler may stop one, a task may rewrite a
file the role reads. This callback counts, in the controller's main process, every result that
changed something, failed or was unreachable, per host. Ansible forks each task's workers from that
process after the previous task's results went through the callbacks, so a worker sees the count
as it stood when its task started. The read records the count it saw; `sglfleet_copy`,
`sglfleet_template`, `sglfleet_file` and `sglfleet_systemd` answer from the read only while the
count is still the same, and run the builtin modules otherwise. Without this callback they never
answer. docs/controller.md, "One read per role".
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]

DOCUMENTATION = """
name: sglfleet_changes
type: aggregate
short_description: count each host's changed or failed results for sglfleet's one-read actions
description:
  - Keeps, in the controller's main process, how many results changed something, failed or were
    unreachable on each host. sglfleet's file and systemd actions answer from a role's read only
    while that count has not moved since the read.
requirements:
  - enabled in callbacks_enabled (sglfleet's ansible.cfg, Molecule config and CLI runner do)
"""

# Where the counts live: a module object in sys.modules, the one name plugins loaded under
# different module names (callbacks, actions) can all find.
REGISTRY = "sglfleet_run_changes"


def registry() -> types.ModuleType:
    found = sys.modules.get(REGISTRY)
    if found is None:
        found = types.ModuleType(REGISTRY)
        found.counts = {}  # type: ignore[attr-defined]
        sys.modules[REGISTRY] = found
    return found


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sglfleet_changes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, int] = registry().counts  # type: ignore[attr-defined]

    def _count(self, result: Any) -> None:
        host = result._host.get_name()
        self._counts[host] = self._counts.get(host, 0) + 1

    def v2_runner_on_ok(self, result: Any) -> None:
        if result._result.get("changed", False):
            self._count(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._count(result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._count(result)
