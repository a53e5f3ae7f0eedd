"""`sglfleet init`: copy an inventory scaffold from templates/."""

from __future__ import annotations

import shutil
from pathlib import Path

from sglfleet.errors import SglfleetError
from sglfleet.paths import project_root


def profiles() -> list[str]:
    base = project_root() / "templates"
    return sorted(p.name for p in base.iterdir() if (p / "hosts.yml").is_file())


def scaffold(profile: str, destination: Path) -> list[Path]:
    source = project_root() / "templates" / profile
    if not (source / "hosts.yml").is_file():
        raise SglfleetError(
            f"no inventory profile named {profile}",
            "choose one of: " + ", ".join(profiles()),
        )
    if destination.exists() and any(destination.iterdir()):
        raise SglfleetError(
            f"{destination} exists and is not empty",
            "choose a new directory; sglfleet never overwrites an inventory",
        )
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return [p for p in destination.rglob("*") if p.is_file()]
