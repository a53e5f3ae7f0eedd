"""The OS preflight's decisions about a host, from raw reads: supported OS, systemd as PID 1,
the commands the roles run. Pure; the playbooks feed it the probe's output."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sglfleet.driver_origin import missing_tools

SUPPORTED_OS = {"Ubuntu": ("22.04", "24.04"), "Debian": ("12",)}


@dataclass(frozen=True)
class HostProbe:
    """`pid1` is /proc/1/comm; `systemd_booted` whether /run/systemd/system exists (sd_booted)."""

    pid1: str = ""
    systemd_booted: bool = False
    tools: Mapping[str, str] = field(default_factory=dict)


def parse_host_probe(text: str) -> HostProbe:
    """The preflight probe: `pid1<TAB>comm`, `systemd-booted<TAB>yes`, `tool<TAB>name<TAB>path`."""
    pid1 = ""
    booted = False
    tools: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key == "pid1":
            pid1 = value.strip()
        elif key == "systemd-booted":
            booted = value.strip() == "yes"
        elif key == "tool":
            name, _, path = value.partition("\t")
            if name and path.strip():
                tools[name] = path.strip()
    return HostProbe(pid1=pid1, systemd_booted=booted, tools=tools)


def os_problems(host: str, distribution: str, version: str, major_version: str) -> list[str]:
    """Ubuntu by release (22.04, 24.04), Debian by major version (12, any point release)."""
    wanted = SUPPORTED_OS.get(distribution)
    have = version if distribution == "Ubuntu" else major_version
    if wanted and have in wanted:
        return []
    return [
        f"{host} runs {distribution or 'an unknown OS'} {version}; sglfleet supports Ubuntu 22.04, "
        "Ubuntu 24.04 and Debian 12. Fix: reinstall the node with one of those, or remove it from "
        "the inventory."
    ]


def systemd_problems(host: str, probe: HostProbe) -> list[str]:
    if probe.pid1 == "systemd" or probe.systemd_booted:
        return []
    return [
        f"{host}: PID 1 is `{probe.pid1 or 'unknown'}`, not systemd (no /run/systemd/system); "
        "every sglfleet role installs and starts systemd units. "
        "Fix: boot the node with systemd as init (a VM or bare-metal install of the OS; "
        "in a container run /sbin/init with systemd), or "
        "remove it from the inventory."
    ]


def host_problems(
    host: str,
    probe: HostProbe,
    *,
    distribution: str,
    version: str,
    major_version: str,
    gpu_node: bool,
    simulated: bool,
) -> list[str]:
    """Every reason the node stack cannot run on this host, each naming the host and the fix."""
    problems = os_problems(host, distribution, version, major_version)
    problems += systemd_problems(host, probe)
    needed: list[str] = ["dpkg-query", "apt-get"]
    if probe.pid1 == "systemd" or probe.systemd_booted:
        # Without systemd the systemd problem above already says it all.
        needed.append("systemctl")
    if gpu_node and not simulated:
        needed.append("modprobe")
    problems += missing_tools(probe.tools, needed, host=host, why="by the sglfleet roles")
    return problems


def tools_from(paths: Iterable[str]) -> dict[str, str]:
    """`command -v` output lines (absolute paths) -> {name: path}."""
    return {
        path.rsplit("/", 1)[-1]: path for path in (p.strip() for p in paths) if path.startswith("/")
    }
