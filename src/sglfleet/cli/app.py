"""The sglfleet command line: parse options, call one function, print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sglfleet import __version__
from sglfleet.cli import ops
from sglfleet.cli.common import InventoryOpt, JsonOpt, emit_json, handled, progress

if TYPE_CHECKING:  # annotations only: these load with the command that runs
    from sglfleet.runner import EventHandler, RunResult

app = typer.Typer(
    name="sglfleet",
    help="Provision and operate SGLang serving clusters on bare-metal GPU servers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(help="A local lab cluster in podman containers.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


@app.command()
@handled
def version() -> None:
    """Print sglfleet's version."""
    print(__version__)


@app.command()
@handled
def init(
    destination: Annotated[Path, typer.Argument(help="New inventory directory.")],
    profile: Annotated[
        str, typer.Option(help="Scaffold: single-node, multi-node-tp or replicas.")
    ] = "single-node",
) -> None:
    """Scaffold an inventory from a profile."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.scaffold import scaffold

    written = scaffold(profile, destination)
    print(f"Wrote {len(written)} files to {destination}. Edit hosts.yml, then run:")
    print(f"  sglfleet plan -i {destination}")


@app.command()
@handled
def plan(inventory: InventoryOpt, as_json: JsonOpt = False) -> None:
    """Show serving groups, ranks, launch commands and the memory-fit check. Touches no host."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.checks import require_fit
    from sglfleet.deploy import load_cluster
    from sglfleet.topology import plan_json

    loaded = load_cluster(inventory, require_fit=False)
    if as_json:
        emit_json(plan_json(loaded.plan))
    else:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ui.render import print_plan

        print_plan(loaded.plan)
    require_fit(loaded.inventory)


@app.command()
@handled
def up(
    inventory: InventoryOpt,
    limit: Annotated[str | None, typer.Option(help="Only these hosts (Ansible pattern).")] = None,
    tags: Annotated[str | None, typer.Option(help="Only tasks with these tags.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Dry run: change nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show file changes.")] = False,
    extra_vars: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-vars",
            "-e",
            help="Run controls as KEY=VALUE (e.g. model_weights_verify=full); desired state "
            "belongs in the inventory.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Converge the cluster: site.yml through ansible-runner with live per-host progress."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.deploy import converge, parse_extra_vars

    controls = parse_extra_vars(extra_vars or [])

    def run(on_event: EventHandler | None = None) -> RunResult:
        return converge(
            inventory,
            limit=limit,
            tags=tags,
            check=check,
            diff=diff,
            extravars=controls,
            on_event=on_event,
        )

    if as_json:
        result = run()
    else:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ui.render import LiveRun, print_recap, print_run_failure

        with LiveRun() as live:
            result = run(live)
        print_recap(result.state)
        if result.rc != 0:
            print_run_failure("site.yml", result)
    if as_json:
        emit_json(
            {
                "recap": result.state.recap,
                "rc": result.rc,
                "failures": [
                    {"host": f.host, "task": f.task, "message": f.message}
                    for f in result.state.failures
                ],
                "artifacts": str(result.artifacts),
            }
        )
    if result.rc != 0:
        raise typer.Exit(result.rc)


@app.command()
@handled
def doctor(
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", help="Also check this inventory's keys and vault."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Is this controller ready: Ansible, collections, ssh, keys, vault, lab; a fix per row."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.doctor import diagnose, document

    items = diagnose(inventory)
    found = document(items)
    if as_json:
        emit_json(found)
    else:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ui.render import print_table

        rows = [[i.item, i.status.upper(), i.observed, i.fix] for i in items]
        print_table("Controller", ["item", "status", "observed", "fix"], rows)
    if found["failed"]:
        raise typer.Exit(1)


@app.command()
@handled
def preflight(
    inventory: InventoryOpt,
    nccl: Annotated[bool, typer.Option("--nccl", help="Also measure NCCL all-reduce.")] = False,
    limit: Annotated[str | None, typer.Option(help="Only these hosts (Ansible pattern).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every node's GPUs (and with --nccl the fabric) against the inventory."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.preflight.run import run_preflight

    if as_json:
        document = run_preflight(inventory, nccl=nccl, limit=limit)
        emit_json(document)
    else:
        # lazy: CLI start-up: rich loads only for a terminal's output
        from sglfleet.ui.preflight import render_preflight
        from sglfleet.ui.render import LiveRun

        with LiveRun() as live:
            document = run_preflight(inventory, nccl=nccl, limit=limit, on_event=live)
        render_preflight(document)
    if document["failed"]:
        raise typer.Exit(1)


@app.command()
@handled
def status(inventory: InventoryOpt, as_json: JsonOpt = False) -> None:
    """Serving groups and nodes: unit state, rank and readiness."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.status import collect_status

    document = collect_status(inventory)
    if as_json:
        emit_json(document)
    else:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ui.status import render_status

        render_status(document)


@lab_app.command("up")
@handled
def lab_up(
    nodes: Annotated[int, typer.Option(help="Number of lab nodes.")] = 3,
    gpus_per_node: Annotated[int, typer.Option(help="Simulated GPUs per node.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Start the lab containers and write their inventory."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.lab.podman import up as lab_start

    document = lab_start(nodes, gpus_per_node, progress)
    if as_json:
        emit_json(document)
    else:
        print(f"Lab inventory: {document['inventory']}")
        print(f"Next: sglfleet up -i {document['inventory']}")


@lab_app.command("image")
@handled
def lab_image() -> None:
    """Build the lab's Debian 12 base image (once; cached)."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.lab.podman import build_image

    build_image(progress)


@lab_app.command("down")
@handled
def lab_down(
    keep_image: Annotated[
        bool, typer.Option(help="Keep the cached base image for the next lab up.")
    ] = False,
) -> None:
    """Remove everything the lab made."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.lab.podman import down

    down(keep_image, progress)


@lab_app.command("status")
@handled
def lab_status(as_json: JsonOpt = False) -> None:
    """The lab's inventory, endpoint, API key and nodes."""
    # lazy: CLI start-up: a command loads only what it runs
    from sglfleet.lab.podman import status as lab_state

    document = lab_state()
    if as_json:
        emit_json(document)
    else:
        # lazy: CLI start-up: a command loads only what it runs
        from sglfleet.ui.render import print_table

        print(f"inventory: {document['inventory']}")
        print(f"endpoint:  {document['endpoint']}")
        print_table(
            "lab nodes",
            ["name", "container", "address"],
            [[n["name"], n["container"], n["address"]] for n in document["nodes"]],
        )


ops.register(app)


def main() -> None:
    app()
