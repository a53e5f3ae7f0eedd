"""`sglfleet preflight --nccl`: run the all-reduce benchmark playbook, judge each result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sglfleet.events.model import Failure
from sglfleet.inventory import load_inventory
from sglfleet.preflight.nccl import Check, judge
from sglfleet.runner import EventHandler, run_playbook

PLAYBOOK = "playbooks/nccl_preflight.yml"


def playbook_checks(failures: Sequence[Failure], rc: int, artifacts: Path) -> list[Check]:
    """The playbook's own failures as check rows, so the table shows what --json shows."""
    log = artifacts / "artifacts"
    checks = [
        Check(
            host=f.host,
            check="nccl.playbook",
            status="fail",
            observed=("unreachable: " if f.unreachable else f"task '{f.task}': ") + f.message[:600],
            expected="the NCCL preflight playbook runs to the end",
            fix=(
                f"check SSH and sudo to {f.host} (ansible_host, key, become)"
                if f.unreachable
                else f"fix what the task reports, then re-run; full log in {log}"
            ),
        )
        for f in failures
    ]
    if rc == 127 and not checks:
        checks.append(
            Check(
                host="controller",
                check="nccl.playbook",
                status="fail",
                observed="ansible-playbook was not found (exit 127)",
                expected="the NCCL preflight playbook runs to the end",
                fix="put the bin folder of sglfleet's venv (holding ansible-playbook) on PATH",
            )
        )
    elif rc != 0 and not checks:
        checks.append(
            Check(
                host="controller",
                check="nccl.playbook",
                status="fail",
                observed=f"{PLAYBOOK} exited {rc} without a failed task",
                expected="the NCCL preflight playbook runs to the end",
                fix=f"read the run's output in {log} (syntax or inventory error)",
            )
        )
    return checks


def nccl_report(
    inventory: Path, *, limit: str | None, on_event: EventHandler | None = None
) -> dict[str, Any]:
    """Judge every result the playbook reported: the `nccl` part of `preflight --json`."""
    inv = load_inventory(inventory)
    result = run_playbook(PLAYBOOK, inventory, limit=limit, on_event=on_event)
    raw = result.state.data.get("sglfleet_nccl_preflight")
    reported = raw if isinstance(raw, dict) else {}
    documents = {
        name: reported[name] for name in sorted(reported) if isinstance(reported[name], dict)
    }
    return report(
        documents,
        inv.global_vars,
        result.state.failures,
        result.rc,
        result.artifacts,
    )


def report(
    documents: dict[str, dict[str, Any]],
    variables: dict[str, Any],
    failures: Sequence[Failure],
    rc: int,
    artifacts: Path,
) -> dict[str, Any]:
    """Checks of every result plus the playbook's failures (`ui.preflight.render_nccl` shows it)."""
    checks: list[Check] = []
    summaries: list[dict[str, Any]] = []
    for name, document in documents.items():
        found, summary = judge(document, variables)
        checks.extend(found)
        summaries.append({"file": name, **summary})
    broken = playbook_checks(failures, rc, artifacts)
    failed = sum(c.status == "fail" for c in checks) + len(broken)
    return {
        "results": summaries,
        "failures": [
            {"host": f.host, "task": f.task, "message": f.message, "unreachable": f.unreachable}
            for f in failures
        ],
        "playbook_checks": [asdict(c) for c in broken],
        "playbook_rc": rc,
        "failed": failed,
    }
