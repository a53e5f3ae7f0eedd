"""`sglfleet rollout`: apply the inventory's changed desired state one batch of serving groups at a
time, each gated on readiness and a smoke test, with an automatic rollback of a group that fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from sglfleet import deploy
from sglfleet.errors import SglfleetError
from sglfleet.rollout import record as rec
from sglfleet.rollout.http import RouterClient
from sglfleet.rollout.record import GroupRecord, RolloutRecord, Step, now_iso
from sglfleet.rollout.steps import (
    Cluster,
    Interrupt,
    Progress,
    Target,
    detect_changes,
    drain,
    failure_text,
    limit_of,
    load_cluster,
    run_ansible,
    smoke,
    unreachable_hosts,
    wait_ready,
)

Confirm = Callable[[str], bool]
T = TypeVar("T")


@dataclass(frozen=True)
class RolloutOptions:
    max_unavailable: int = 1
    canary: bool = False
    groups: tuple[str, ...] = ()
    # A 671B FP8 load plus CUDA-graph capture takes tens of minutes (sglang_server_start_timeout_s).
    ready_timeout_s: float = 2400.0
    drain_timeout_s: float = 600.0
    smoke_timeout_s: float = 300.0
    router_timeout_s: float = 300.0
    crash_probe_after_s: float = 15.0
    crash_probe_every_s: float = 30.0


def plan_batches(
    todo: list[T], routed_groups: int, max_unavailable: int, canary: bool
) -> list[list[T]]:
    """Groups to update, in batches of at most --max-unavailable; with more than one routed group,
    at least one stays serving whatever --max-unavailable says; --canary makes the first batch one
    group."""
    size = max(1, max_unavailable)
    if routed_groups > 1:
        size = min(size, routed_groups - 1)
    first: list[list[T]] = []
    rest = todo
    if canary and todo:
        first, rest = [todo[:1]], todo[1:]
    return first + [rest[i : i + size] for i in range(0, len(rest), size)]


class _Timed:
    """Record one step of one group: start time, duration, success and a detail line."""

    def __init__(self, record: RolloutRecord, group: GroupRecord, name: str, say: Progress) -> None:
        self.record = record
        self.step = Step(name=name, started=now_iso())
        self.say = say
        self._t0 = time.monotonic()
        group.steps.append(self.step)
        record.save()
        say(f"[{group.name}] {name} ...")

    def done(self, ok: bool = True, detail: str = "") -> None:
        self.step.seconds = round(time.monotonic() - self._t0, 2)
        self.step.ok = ok
        self.step.detail = detail
        self.record.save()
        mark = "ok" if ok else "FAILED"
        extra = f": {detail}" if detail else ""
        self.say(f"[{self.step.name}] {mark} in {self.step.seconds:.1f}s{extra}")


class Rollout:
    def __init__(
        self,
        inventory: Path,
        options: RolloutOptions,
        progress: Progress,
        confirm: Confirm,
    ) -> None:
        self.inventory = inventory
        self.options = options
        self.say = progress
        self.confirm = confirm
        self.cluster: Cluster = load_cluster(inventory)
        self.router: RouterClient | None = self.cluster.router()
        self.targets = self.cluster.select(list(options.groups) or None)
        self.record = RolloutRecord(
            id=rec.new_id(),
            inventory=str(inventory.resolve()),
            options=asdict(options),
            groups=[
                GroupRecord(
                    name=t.name, hosts=list(t.hosts), rank0_url=t.rank0_url, routed=t.routed
                )
                for t in self.targets
            ],
        )
        self.interrupt = Interrupt(progress)
        self._t0 = time.monotonic()

    # -- the whole rollout -------------------------------------------------------------------

    def run(self) -> RolloutRecord:
        self.record.save()
        self.say(f"rollout {self.record.id}: record {self.record.path}")
        try:
            with self.interrupt.installed():
                self._run()
        except SglfleetError as exc:
            self._finish("failed", rec.EXIT_ROLLBACK_FAILED, exc.message, exc.hint)
            raise
        return self.record

    def _run(self) -> None:
        todo = self._detect()
        if todo is None:
            return
        if not todo:
            self._finish("nothing_to_do", rec.EXIT_OK, "every group already runs its desired state")
            return
        if self.router is not None:
            in_router = {w.url for w in self.router.workers()}
            for target in todo:
                group = self.record.group(target.name)
                group.routed = target.routed and target.rank0_url.rstrip("/") in in_router
        batches = self._batches(todo)
        for index, batch in enumerate(batches):
            if self.interrupt.requested:
                self._not_started(batches[index:])
                self._finish(
                    "interrupted",
                    rec.EXIT_INTERRUPTED,
                    f"interrupted: {index} batch(es) settled, the rest were not started",
                    "every group runs either its old or its new state and serves; run"
                    " `sglfleet rollout` again to go on",
                )
                return
            if self.options.canary and index == 1:
                rest = ", ".join(t.name for b in batches[1:] for t in b)
                if not self.confirm(
                    f"canary {batches[0][0].name} is updated and serving; go on with {rest}?"
                ):
                    self._not_started(batches[1:])
                    self._finish(
                        "paused_after_canary",
                        rec.EXIT_OK,
                        f"stopped after the canary {batches[0][0].name}",
                        "run `sglfleet rollout` again to go on with the other groups",
                    )
                    return
            outcome = self._batch(batch)
            if outcome is not None:
                self._not_started(batches[index + 1 :])
                self._finish(*outcome)
                return
        self._finish("succeeded", rec.EXIT_OK, f"{len(todo)} group(s) updated")

    def _detect(self) -> list[Target] | None:
        self.say("checking which groups differ from the inventory (serving.yml --check)")
        t0 = time.monotonic()
        changes = detect_changes(self.inventory, self.targets)
        seconds = time.monotonic() - t0
        if changes.unreachable:
            self.record.unreachable = changes.unreachable
            self._finish(
                "unreachable",
                rec.EXIT_UNREACHABLE,
                f"unreachable before any change: {', '.join(changes.unreachable)}",
                "nothing was changed; bring the host(s) back (or remove them from their group),"
                " then run `sglfleet rollout` again",
            )
            return None
        if changes.failures:
            raise SglfleetError(
                "the --check run of serving.yml failed: " + "; ".join(changes.failures[:3]),
                "nothing was changed; fix the inventory or host; log in "
                + str(changes.result.artifacts),
            )
        todo = []
        for target in self.targets:
            group = self.record.group(target.name)
            hosts = [h for h in target.hosts if h in changes.changed_hosts]
            group.changed = bool(hosts)
            group.changes = sorted({f"{h}: {t}" for h in hosts for t in changes.tasks.get(h, [])})
            if not hosts:
                group.result = rec.UNCHANGED
            else:
                todo.append(target)
            group.steps.append(
                Step(
                    "detect",
                    now_iso(),
                    round(seconds, 2),
                    True,
                    "changed" if hosts else "unchanged",
                )
            )
        self.record.save()
        self.say(
            "to update: "
            + (", ".join(t.name for t in todo) or "nothing")
            + "; unchanged: "
            + (", ".join(t.name for t in self.targets if t not in todo) or "none")
        )
        return todo

    def _batches(self, todo: list[Target]) -> list[list[Target]]:
        routed = sum(1 for t in self.cluster.targets if self.record_routed(t))
        return plan_batches(todo, routed, self.options.max_unavailable, self.options.canary)

    def record_routed(self, target: Target) -> bool:
        try:
            return self.record.group(target.name).routed
        except StopIteration:
            return target.routed

    # -- one batch ---------------------------------------------------------------------------

    def _batch(self, batch: list[Target]) -> tuple[str, int, str, str] | None:
        """Update a batch; None on success, else the rollout's (result, exit, message, hint)."""
        self._check_others_serve(batch)
        for target in batch:
            group = self.record.group(target.name)
            if group.routed and self.router is not None:
                step = _Timed(self.record, group, "router_remove", self.say)
                self.router.remove(target.rank0_url, timeout=self.options.router_timeout_s)
                step.done(detail=f"{target.rank0_url} out of {self.router.url}")
        for target in batch:
            group = self.record.group(target.name)
            step = _Timed(self.record, group, "drain", self.say)
            ok, detail = drain(target, self.options.drain_timeout_s)
            step.done(ok, detail)
        t_restart = time.monotonic()
        steps = [_Timed(self.record, self.record.group(t.name), "apply", self.say) for t in batch]
        result = run_ansible(
            "playbooks/rollout_group.yml",
            self.inventory,
            limit=limit_of(batch),
            skip_tags="router",
            extravars={
                "sglfleet_rollout_id": self.record.id,
                "sglang_server_start": True,
                "sglang_server_restart_allowed": False,
                "sglang_server_ready_timeout_s": 0,
            },
        )
        lost = unreachable_hosts(result)
        apply_error = ""
        if lost:
            self.record.unreachable = sorted(set(self.record.unreachable) | set(lost))
            apply_error = f"unreachable during apply: {', '.join(lost)}"
        elif result.rc != 0:
            apply_error = f"apply failed: {failure_text(result)} (log {result.artifacts})"
        for step in steps:
            step.done(not apply_error, apply_error or f"log {result.artifacts}")
        failed: dict[str, str] = {}
        if apply_error:
            failed = {t.name: apply_error for t in batch}
        else:
            for target in batch:
                error = self._verify(target, t_restart)
                if error:
                    failed[target.name] = error
        for target in batch:
            if target.name in failed:
                continue
            group = self.record.group(target.name)
            if group.routed and self.router is not None:
                step = _Timed(self.record, group, "router_add", self.say)
                try:
                    self.router.add(
                        target.rank0_url,
                        target.worker_type,
                        target.bootstrap_port,
                        timeout=self.options.router_timeout_s,
                    )
                except SglfleetError as exc:
                    step.done(False, exc.message)
                    failed[target.name] = exc.message
                    continue
                step.done(detail=f"{target.rank0_url} back in the router")
            group.result = rec.UPDATED
            group.seconds = round(sum(s.seconds for s in group.steps if s.name != "detect"), 2)
            self.record.save()
        if not failed:
            return None
        return self._rollback([t for t in batch if t.name in failed], failed, bool(lost))

    def _verify(self, target: Target, t_restart: float) -> str:
        group = self.record.group(target.name)
        step = _Timed(self.record, group, "wait_ready", self.say)
        readiness = wait_ready(
            self.cluster.inv,
            target,
            self.options.ready_timeout_s,
            probe_after_s=self.options.crash_probe_after_s,
            probe_every_s=self.options.crash_probe_every_s,
        )
        step.done(readiness.ok, readiness.detail)
        if not readiness.ok:
            if readiness.detail.startswith("unreachable"):
                lost = readiness.detail.split(": ", 1)[1].split(", ")
                self.record.unreachable = sorted(set(self.record.unreachable) | set(lost))
            return readiness.detail
        group.restart_to_ready_s = round(time.monotonic() - t_restart, 2)
        step = _Timed(self.record, group, "smoke_test", self.say)
        error = smoke(self.cluster, target, self.options.smoke_timeout_s)
        step.done(not error, error or f"chat completion through {target.rank0_url}")
        return error

    def _check_others_serve(self, batch: list[Target]) -> None:
        """Refuse to take a batch out when no other group would be left serving clients."""
        if self.router is None:
            return
        names = {t.name for t in batch}
        others = [t for t in self.cluster.targets if t.routed and t.name not in names]
        if not others:
            return
        urls = {t.rank0_url.rstrip("/") for t in batch}
        healthy = [w for w in self.router.workers() if w.healthy and w.url not in urls]
        if not healthy:
            for target in batch:
                self.record.group(target.name).result = rec.NOT_STARTED
            raise SglfleetError(
                f"no other group is healthy in the router: taking {', '.join(names)} out would"
                " stop all traffic",
                "bring the other groups back first (`sglfleet status`, `sglfleet undrain`)",
            )

    # -- rollback ----------------------------------------------------------------------------

    def _rollback(
        self, targets: list[Target], errors: dict[str, str], unreachable: bool
    ) -> tuple[str, int, str, str]:
        for target in targets:
            group = self.record.group(target.name)
            group.error = errors[target.name]
        self.say("rolling back " + ", ".join(t.name for t in targets))
        steps = [
            _Timed(self.record, self.record.group(t.name), "rollback", self.say) for t in targets
        ]
        result = run_ansible(
            "playbooks/rollout_rollback.yml",
            self.inventory,
            limit=limit_of(targets),
            extravars={"sglfleet_rollout_id": self.record.id},
        )
        lost = unreachable_hosts(result)
        if lost:
            self.record.unreachable = sorted(set(self.record.unreachable) | set(lost))
        error = ""
        if lost:
            error = f"unreachable during rollback: {', '.join(lost)}"
        elif result.rc != 0:
            error = f"rollback failed: {failure_text(result)} (log {result.artifacts})"
        for step in steps:
            step.done(not error, error or f"log {result.artifacts}")
        restored = []
        for target in targets:
            group = self.record.group(target.name)
            if error:
                group.result = rec.ROLLBACK_FAILED
                continue
            problem = self._verify(target, time.monotonic())
            if not problem and group.routed and self.router is not None:
                step = _Timed(self.record, group, "router_add", self.say)
                try:
                    self.router.add(
                        target.rank0_url,
                        target.worker_type,
                        target.bootstrap_port,
                        timeout=self.options.router_timeout_s,
                    )
                    step.done(detail=f"{target.rank0_url} back in the router (previous state)")
                except SglfleetError as exc:
                    problem = exc.message
                    step.done(False, problem)
            group.result = rec.ROLLBACK_FAILED if problem else rec.ROLLED_BACK
            if problem:
                group.error += f"; rollback: {problem}"
            else:
                restored.append(target.name)
            self.record.save()
        names = ", ".join(t.name for t in targets)
        why = "; ".join(f"{n}: {e}" for n, e in errors.items())
        if self.record.unreachable:
            return (
                "unreachable",
                rec.EXIT_UNREACHABLE,
                f"host(s) {', '.join(self.record.unreachable)} unreachable while updating {names}"
                f" ({why}); rolled back and serving: {', '.join(restored) or 'none'}",
                "groups not yet updated were left alone; bring the host(s) back, check"
                " `sglfleet status`, then run `sglfleet rollout` again (`sglfleet undrain` puts a"
                " group back in the router)",
            )
        if len(restored) == len(targets):
            return (
                "rolled_back",
                rec.EXIT_ROLLED_BACK,
                f"{names} failed and {'was' if len(targets) == 1 else 'were'} rolled back: {why}",
                "the rest of the fleet was left alone; fix the inventory (see `sglfleet logs"
                f" --group {targets[0].name}`), then run `sglfleet rollout` again",
            )
        return (
            "rollback_failed",
            rec.EXIT_ROLLBACK_FAILED,
            f"{names} failed ({why}) and could not be restored",
            "the group is out of the router; see `sglfleet logs` and `sglfleet status`, fix it,"
            " then `sglfleet undrain` it",
        )

    # -- bookkeeping -------------------------------------------------------------------------

    def _not_started(self, batches: list[list[Target]]) -> None:
        for batch in batches:
            for target in batch:
                self.record.group(target.name).result = rec.NOT_STARTED

    def _finish(self, result: str, exit_code: int, message: str, hint: str = "") -> None:
        self.record.result = result
        self.record.exit_code = exit_code
        self.record.message = message
        self.record.hint = hint
        self.record.finished = now_iso()
        self.record.seconds = round(time.monotonic() - self._t0, 2)
        self.record.save()


def run_rollout(
    inventory: Path,
    options: RolloutOptions,
    progress: Progress,
    confirm: Confirm,
) -> RolloutRecord:
    """Validate, then roll out; the record (also saved under $SGLFLEET_HOME/rollouts/) says how."""
    deploy.load_cluster(inventory)
    return Rollout(inventory, options, progress, confirm).run()
