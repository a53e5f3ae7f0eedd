"""What every command shares: the common options, JSON output and turning errors into exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from sglfleet.errors import SglfleetError

P = ParamSpec("P")
R = TypeVar("R")

InventoryOpt = Annotated[
    Path, typer.Option("--inventory", "-i", help="Inventory directory (holding hosts.yml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def progress(message: str) -> None:
    sys.stderr.write(f"lab: {message}\n")


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def handled(func: Callable[P, R]) -> Callable[P, R]:
    """Turn SglfleetError into `Error:`/`Hint:` lines and its exit code, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SglfleetError as exc:
            # lazy: CLI start-up: rich loads only to print an error
            from sglfleet.ui.render import print_error

            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("Error: interrupted\n")
            raise typer.Exit(130) from None

    return wrapper
