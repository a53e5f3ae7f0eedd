"""Where sglfleet keeps things: the project (playbooks, roles) and the user's home for run data."""

from __future__ import annotations

import os
from pathlib import Path

from sglfleet.errors import SglfleetError


def _is_project(path: Path) -> bool:
    return (path / "site.yml").is_file() and (path / "roles").is_dir()


def project_root() -> Path:
    """The folder holding site.yml and the roles.

    $SGLFLEET_PROJECT when set; else the checkout this package runs from (a clone, an editable
    install); else the copy a wheel carries (`sglfleet/_project`, written by setup.py for
    `pipx install .` and `pip install .`). Never the working directory: a command run from
    elsewhere must not pick up whatever `site.yml` happens to be there.
    """
    env = os.environ.get("SGLFLEET_PROJECT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if _is_project(parent):
            return parent
    packaged = here.parent / "_project"
    if _is_project(packaged):
        return packaged
    raise SglfleetError(
        f"sglfleet cannot find its playbooks: no checkout above {here.parent} and no {packaged}",
        "reinstall sglfleet (`pipx install .` or `pip install .` from a checkout), or set "
        "SGLFLEET_PROJECT to a checkout",
    )


def sglfleet_home() -> Path:
    """Run artifacts, lab state and rollout records: $SGLFLEET_HOME, default ~/.sglfleet."""
    home = Path(os.environ.get("SGLFLEET_HOME", "~/.sglfleet")).expanduser()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home
