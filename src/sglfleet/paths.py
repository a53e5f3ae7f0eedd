"""Where sglfleet keeps things: the project (playbooks, roles) and the user's home for run data."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder holding site.yml: $SGLFLEET_PROJECT, else the checkout this package runs from."""
    env = os.environ.get("SGLFLEET_PROJECT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "site.yml").is_file() and (parent / "roles").is_dir():
            return parent
    return Path.cwd()


def sglfleet_home() -> Path:
    """Run artifacts, lab state and rollout records: $SGLFLEET_HOME, default ~/.sglfleet."""
    home = Path(os.environ.get("SGLFLEET_HOME", "~/.sglfleet")).expanduser()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home
