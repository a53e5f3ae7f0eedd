"""Ansible filters for the serving venvs: the OS's Python, PD transfer engines, preflight problems.

All decisions live in sglfleet.wheels (pure, tested against wheel metadata recorded from PyPI).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from ansible.errors import AnsibleFilterError  # noqa: E402

from sglfleet.wheels import (  # noqa: E402
    OS_PYTHONS,
    os_python,
    python_problems,
    requirements_text,
    split_probe,
    transfer_engine,
    venv_python,
)


def _release(facts: dict[str, Any]) -> tuple[str, str]:
    distribution = str(facts.get("distribution", ""))
    key = "distribution_major_version" if distribution == "Debian" else "distribution_version"
    return distribution, str(facts.get(key, ""))


def sglfleet_serving_python(facts: dict[str, Any]) -> dict[str, Any]:
    """{interpreter, python, apt_packages, label} of the host's OS (from `ansible_facts`)."""
    distribution, release = _release(facts)
    entry = os_python(distribution, release)
    if entry is None:
        supported = ", ".join(e.label for e in OS_PYTHONS)
        raise AnsibleFilterError(
            f"sglfleet has no serving Python for {distribution} {release} (supported: {supported});"
            " the preflight (playbooks/preflight.yml) refuses such a host: run it first"
        )
    return {
        "interpreter": entry.interpreter,
        "python": entry.python,
        "apt_packages": list(entry.apt_packages),
        "label": entry.label,
    }


def sglfleet_python_problems(
    probe: str,
    facts: dict[str, Any],
    host: str,
    releases: list[list[str]] | None = None,
) -> list[str]:
    """Why this host cannot get its serving venvs (one line each, with the fix); empty if it can.

    `probe`: stdout of the preflight's probe (sglfleet.wheels.split_probe says its shape).
    """
    distribution, release = _release(facts)
    glibc, interpreter_version, apt_policy = split_probe(probe)
    return python_problems(
        host,
        distribution,
        release,
        str(facts.get("architecture", "")),
        glibc,
        interpreter_version,
        apt_policy,
        [(str(name), str(version)) for name, version in releases or []],
    )


def sglfleet_transfer_engine(backend: str | None) -> dict[str, Any]:
    """What `--disaggregation-transfer-backend <backend>` needs; `pins` empty for none/fake."""
    engine = transfer_engine(backend)
    if engine is None:
        if backend:
            raise AnsibleFilterError(
                f"sglfleet installs no transfer engine for backend {backend!r} "
                "(it knows mooncake, nixl and fake): set disaggregation.transfer_backend"
            )
        return {
            "backend": "",
            "pins": [],
            "apt_packages": [],
            "import_check": "",
            "import_needs_gpu": "",
            "requirements": "",
        }
    return {
        "backend": engine.backend,
        "pins": [f"{pin.name}=={pin.version}" for pin in engine.pins],
        "apt_packages": list(engine.apt_packages),
        "import_check": engine.import_check,
        "import_needs_gpu": engine.import_needs_gpu,
        "requirements": requirements_text(engine) if engine.pins else "",
    }


def sglfleet_venv_python(slurped: dict[str, Any] | None) -> str:
    """`major.minor` of a venv from a slurp of its pyvenv.cfg; empty when there is none."""
    if not slurped or "content" not in slurped:
        return ""
    text = base64.b64decode(str(slurped["content"])).decode("utf-8", "replace")
    return venv_python(text) or ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_serving_python": sglfleet_serving_python,
            "sglfleet_python_problems": sglfleet_python_problems,
            "sglfleet_transfer_engine": sglfleet_transfer_engine,
            "sglfleet_venv_python": sglfleet_venv_python,
        }
