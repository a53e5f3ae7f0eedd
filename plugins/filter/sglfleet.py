"""Ansible filters over plain data: package checks and the content-addressed zip of a package.

The cluster plan is not here: the `sglfleet_plan` vars plugin computes it once per run and hands
each host its part as the variable `sglfleet_plan` (plugins/vars/sglfleet_plan.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.packages import missing as sglfleet_packages_missing  # noqa: E402
from sglfleet.packages import parse_dpkg_query as sglfleet_dpkg_installed  # noqa: E402
from sglfleet.packages import selection_pending as sglfleet_selection_pending  # noqa: E402
from sglfleet.pyzip import build  # noqa: E402


def sglfleet_pyz(package_dir: str | list[str]) -> str:
    """Controller path of a reproducible zip of this package, or of these packages in one zip."""
    return str(build(package_dir))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_packages_missing": sglfleet_packages_missing,
            "sglfleet_dpkg_installed": sglfleet_dpkg_installed,
            "sglfleet_selection_pending": sglfleet_selection_pending,
            "sglfleet_pyz": sglfleet_pyz,
        }
