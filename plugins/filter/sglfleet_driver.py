"""Ansible filters for the node stack's host decisions: driver origin and what the nvidia_driver
role may do about it, the persistenced unit's user, the OS preflight (systemd, OS, commands).
Thin wrappers over the pure sglfleet.driver_origin and sglfleet.host_checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.driver_origin import (  # noqa: E402
    driver_origin,
    driver_plan,
    missing_tools,
    parse_probe,
    persistenced_command,
)
from sglfleet.host_checks import host_problems, parse_host_probe, systemd_problems  # noqa: E402


def sglfleet_driver_found(probe_stdout: str) -> dict[str, Any]:
    """The detect probe's output -> origin, versions, flavour, evidence, and the commands found."""
    probe = parse_probe(str(probe_stdout or ""))
    found = driver_origin(probe)
    found["tools"] = dict(probe.tools)
    return found


def sglfleet_driver_plan(
    found: dict[str, Any],
    host: str,
    foreign_mode: str,
    branch: str,
    version: str = "",
    kernel_modules: str = "",
) -> dict[str, Any]:
    return driver_plan(
        found,
        host=str(host),
        foreign_mode=str(foreign_mode),
        branch=str(branch),
        version=str(version or ""),
        kernel_modules=str(kernel_modules or ""),
    )


def sglfleet_missing_tools(
    tools: dict[str, str], needed: list[str], host: str, why: str
) -> list[str]:
    return missing_tools(tools or {}, [str(n) for n in needed or []], host=str(host), why=str(why))


def sglfleet_persistenced_command(unit_text: str) -> dict[str, str]:
    return persistenced_command(str(unit_text or ""))


def sglfleet_host_problems(
    probe_stdout: str,
    host: str,
    distribution: str,
    version: str,
    major_version: str,
    gpu_node: bool = True,
    simulated: bool = False,
) -> list[str]:
    return host_problems(
        str(host),
        parse_host_probe(str(probe_stdout or "")),
        distribution=str(distribution),
        version=str(version),
        major_version=str(major_version),
        gpu_node=bool(gpu_node),
        simulated=bool(simulated),
    )


def sglfleet_systemd_problems(probe_stdout: str, host: str) -> list[str]:
    """From a probe output with `pid1` / `systemd-booted` lines (detect.yml, the preflight)."""
    return systemd_problems(str(host), parse_host_probe(str(probe_stdout or "")))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_driver_found": sglfleet_driver_found,
            "sglfleet_driver_plan": sglfleet_driver_plan,
            "sglfleet_missing_tools": sglfleet_missing_tools,
            "sglfleet_persistenced_command": sglfleet_persistenced_command,
            "sglfleet_host_problems": sglfleet_host_problems,
            "sglfleet_systemd_problems": sglfleet_systemd_problems,
        }
