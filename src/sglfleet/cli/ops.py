"""`sglfleet rollout` and the day-2 commands: parse options, call one function, print.

app.py registers them with `register(app)`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sglfleet.cli.common import InventoryOpt, JsonOpt, emit_json, handled

GroupOpt = Annotated[
    list[str] | None,
    typer.Option("--group", "-g", help="Serving group (repeatable); default: every group."),
]
ReadyTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--ready-timeout",
        help="Seconds to wait for rank 0's /health_generate (671B FP8 loads take tens of minutes).",
    ),
]
DrainTimeoutOpt = Annotated[
    float, typer.Option("--drain-timeout", help="Seconds to wait for in-flight requests.")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Even when no other group would be left serving.")
]


def say(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def register(app: typer.Typer) -> None:
    """Add rollout, logs, start, stop, restart, drain, undrain and rollouts to the app."""

    @app.command()
    @handled
    def rollout(
        inventory: InventoryOpt,
        max_unavailable: Annotated[
            int,
            typer.Option(
                "--max-unavailable", help="Groups updated at once (at least one stays serving)."
            ),
        ] = 1,
        canary: Annotated[
            bool, typer.Option("--canary", help="Update one group, then ask before the rest.")
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; go on.")] = False,
        group: GroupOpt = None,
        ready_timeout: ReadyTimeoutOpt = 2400.0,
        drain_timeout: DrainTimeoutOpt = 600.0,
        smoke_timeout: Annotated[
            float, typer.Option("--smoke-timeout", help="Seconds for the smoke chat completion.")
        ] = 300.0,
        as_json: JsonOpt = False,
    ) -> None:
        """Apply changed desired state group by group, health-gated, rolling back a failed group."""
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.rollout import RolloutOptions, run_rollout
        from sglfleet.ui.rollout import print_rollout

        def confirm(question: str) -> bool:
            if yes:
                say(f"{question} yes (--yes)")
                return True
            if not sys.stdin.isatty():
                say(f"{question} no (not a terminal; pass --yes to go on)")
                return False
            return typer.confirm(question, default=False, err=True)

        options = RolloutOptions(
            max_unavailable=max_unavailable,
            canary=canary,
            groups=tuple(group or ()),
            ready_timeout_s=ready_timeout,
            drain_timeout_s=drain_timeout,
            smoke_timeout_s=smoke_timeout,
        )
        record = run_rollout(inventory, options, say, confirm)
        if as_json:
            emit_json(record.to_json())
        else:
            print_rollout(record.to_json())
        if record.exit_code:
            if not as_json:
                sys.stderr.write(f"Error: {record.message}\n")
                if record.hint:
                    sys.stderr.write(f"Hint: {record.hint}\n")
            raise typer.Exit(record.exit_code)

    @app.command()
    @handled
    def rollouts(
        limit: Annotated[int, typer.Option(help="How many, newest first.")] = 10,
        as_json: JsonOpt = False,
    ) -> None:
        """Past rollouts recorded under $SGLFLEET_HOME/rollouts/."""
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.rollout import history
        from sglfleet.ui.render import print_table

        records = history(limit)
        if as_json:
            emit_json(records)
            return
        print_table(
            "Rollouts",
            ["id", "started", "result", "seconds", "groups"],
            [
                [
                    r["id"],
                    r["started"],
                    r["result"],
                    r.get("seconds"),
                    ", ".join(f"{g['name']}={g['result']}" for g in r["groups"]),
                ]
                for r in records
            ],
        )

    @app.command()
    @handled
    def logs(
        inventory: InventoryOpt,
        group: GroupOpt = None,
        lines: Annotated[int, typer.Option("--lines", "-n", help="Lines per member.")] = 200,
        since: Annotated[
            str | None, typer.Option(help="journalctl --since (e.g. '10 min ago').")
        ] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    ) -> None:
        """The journal of serving-group units, merged by time and prefixed by host."""
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ops import logs as show_logs

        def write(line: str) -> None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

        code = show_logs(inventory, group, lines=lines, since=since, follow=follow, write=write)
        if code:
            raise typer.Exit(code)

    def _service(
        action: str,
        inventory: Path,
        group: list[str] | None,
        ready_timeout: float,
        drain_timeout: float,
        force: bool,
    ) -> None:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ops import service

        service(
            inventory,
            action,
            group,
            ready_timeout_s=ready_timeout,
            drain_timeout_s=drain_timeout,
            force=force,
            say=say,
        )

    @app.command()
    @handled
    def start(
        inventory: InventoryOpt, group: GroupOpt = None, ready_timeout: ReadyTimeoutOpt = 2400.0
    ) -> None:
        """Start groups (members together), wait until ready, put them back in the router."""
        _service("start", inventory, group, ready_timeout, 0.0, False)

    @app.command()
    @handled
    def stop(
        inventory: InventoryOpt,
        group: GroupOpt = None,
        drain_timeout: DrainTimeoutOpt = 600.0,
        force: ForceOpt = False,
    ) -> None:
        """Take groups out of the router, drain them, stop the members (rank 0 first)."""
        _service("stop", inventory, group, 0.0, drain_timeout, force)

    @app.command()
    @handled
    def restart(
        inventory: InventoryOpt,
        group: GroupOpt = None,
        ready_timeout: ReadyTimeoutOpt = 2400.0,
        drain_timeout: DrainTimeoutOpt = 600.0,
        force: ForceOpt = False,
    ) -> None:
        """Stop then start groups: out of the router, drained, restarted, ready, back in."""
        _service("restart", inventory, group, ready_timeout, drain_timeout, force)

    @app.command("drain")
    @handled
    def drain_cmd(
        inventory: InventoryOpt,
        host: Annotated[str, typer.Argument(help="The node to take out for maintenance.")],
        drain_timeout: DrainTimeoutOpt = 600.0,
        force: ForceOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Take a node's serving group out of the router and wait for in-flight requests."""
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ops import drain_node

        entry = drain_node(inventory, host, drain_timeout_s=drain_timeout, force=force, say=say)
        if as_json:
            emit_json(entry)
        else:
            print(f"{host} drained (group {entry['group']}); undo: sglfleet undrain {host}")

    @app.command()
    @handled
    def undrain(
        inventory: InventoryOpt,
        host: Annotated[str, typer.Argument(help="The node to put back.")],
        ready_timeout: ReadyTimeoutOpt = 2400.0,
    ) -> None:
        """Put a drained node's group back in the router once it is ready."""
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ops import undrain_node

        entry = undrain_node(inventory, host, ready_timeout_s=ready_timeout, say=say)
        print(f"{host} back in service (group {entry['group']})")
