"""Errors a user can act on: each names where (host), what (variable) and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    message: str
    hint: str
    host: str | None = None
    variable: str | None = None

    def render(self) -> str:
        where = []
        if self.host:
            where.append(f"host {self.host}")
        if self.variable:
            where.append(f"variable {self.variable}")
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.message}"


class SglfleetError(Exception):
    """An error with a hint; the CLI prints `Error:` and `Hint:` lines and exits non-zero."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = problems or []


class InventoryError(SglfleetError):
    """The inventory is invalid; raised before any host is contacted."""

    exit_code = 2

    def __init__(self, problems: list[Problem], path: str = "") -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"inventory {path}: {len(problems)} {noun}", "", problems)
        self.path = path


def readable_order(problems: Iterable[Problem]) -> list[Problem]:
    """Drop repeats; cluster-wide problems first, then host by host (stable within each)."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.host is not None, p.host or ""))
