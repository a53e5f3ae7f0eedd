"""Where a node's NVIDIA driver comes from, and what the nvidia_driver role may do about it.

Pure functions over raw reads of the host (the role's probe, or files captured from a real host):
/sys/module/nvidia/version, /proc/driver/nvidia/version, /proc/devices, `command -v nvidia-smi`
with `dpkg -S` of it, the .run installer's traces and `dpkg-query` of the NVIDIA packages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ORIGINS = ("package", "runfile", "image", "none")
FOREIGN_ORIGINS = ("runfile", "image")
FOREIGN_MODES = ("refuse", "adopt")

# Packages that carry the kernel module or nvidia-smi (NVIDIA's CUDA repository, Ubuntu's archive
# including its precompiled linux-modules-nvidia-*, Debian's archive). Not cuda-compat-* (the
# forward-compatibility libcuda, installed without any driver on the real H200 host) nor
# libnvidia-* libraries alone.
_DRIVER_PACKAGE = re.compile(
    r"^(nvidia-dkms-[0-9]+(-server)?(-open)?"
    r"|nvidia-dkms-open|nvidia-kernel-(open-)?dkms|nvidia-open-kernel-dkms|nvidia-kernel-source-.+"
    r"|linux-modules-nvidia-.+|linux-objects-nvidia-.+"
    r"|nvidia-headless-.+|nvidia-driver-.+|nvidia-driver|nvidia-open(-[0-9]+)?"
    r"|nvidia-utils-[0-9]+(-server)?|nvidia-smi|nvidia-compute-utils-[0-9]+(-server)?"
    r"|cuda-drivers(-[0-9]+)?)$"
)
# Among those, the ones that carry (or build) the kernel module itself.
_MODULE_PACKAGE = re.compile(
    r"^(nvidia-dkms-.+|nvidia-kernel-(open-)?dkms|nvidia-open-kernel-dkms|linux-modules-nvidia-.+)$"
)
# The .run installer leaves nvidia-installer (and nvidia-uninstall, a link to it) and its log.
_RUNFILE_TRACES = (
    "/usr/bin/nvidia-installer",
    "/usr/bin/nvidia-uninstall",
    "/var/log/nvidia-installer.log",
)
_UNINSTALLERS = ("/usr/bin/nvidia-installer", "/usr/bin/nvidia-uninstall")
_VERSION = re.compile(r"\b([0-9]{3})\.([0-9]+)(\.[0-9]+)?\b")


@dataclass(frozen=True)
class DriverProbe:
    """What was read on the host; empty strings/collections where nothing was found."""

    module_version: str = ""
    proc_version: str = ""
    proc_devices: tuple[str, ...] = ()
    smi_path: str = ""
    smi_owners: tuple[str, ...] = ()
    runfile_traces: tuple[str, ...] = ()
    packages: Mapping[str, str] = field(default_factory=dict)
    tools: Mapping[str, str] = field(default_factory=dict)


def upstream_version(debian_version: str) -> str:
    """580.95.05-0ubuntu1 -> 580.95.05; 1:535.216.01-1~deb12u1 -> 535.216.01."""
    match = _VERSION.search(debian_version.split(":", 1)[-1])
    return match.group(0) if match else ""


def parse_dpkg_query(text: str) -> dict[str, str]:
    """Installed packages from `dpkg-query -W -f '${Package}\\t${Version}\\t${Status}\\n'`.

    Accepts `${Status}` ("install ok installed", "hold ok installed") or `${db:Status-Status}`
    ("installed") as the last field, an optional leading `package` tag, and ignores dpkg-query's
    own messages ("no packages found matching ...").
    """
    installed: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if fields and fields[0] == "package":
            fields = fields[1:]
        if len(fields) < 3 or not fields[0] or " " in fields[0]:
            continue
        name, version, status = fields[0], fields[1], fields[-1].split()
        if status and status[-1] == "installed" and version:
            installed[name.split(":", 1)[0]] = version
    return installed


def parse_dpkg_search(text: str) -> tuple[str, ...]:
    """Owners from `dpkg -S PATH` ("pkg1, pkg2:amd64: /usr/bin/x"); messages, diversions ignored."""
    owners: list[str] = []
    for line in text.splitlines():
        if line.startswith(("dpkg-query:", "dpkg:", "diversion ")) or ": /" not in line:
            continue
        for owner in line.split(": /", 1)[0].split(","):
            name = owner.strip().split(":", 1)[0]
            if name and name not in owners:
                owners.append(name)
    return tuple(owners)


def parse_proc_devices(text: str) -> tuple[str, ...]:
    """Character device names of /proc/devices (`195 nvidia`, `195 nvidia-frontend`, ...)."""
    names: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("Block devices"):
            break
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            names.append(parts[1])
    return tuple(names)


def parse_probe(text: str) -> DriverProbe:
    """The nvidia_driver role's detect probe: tab-separated `key<TAB>value...` lines."""
    module_version = proc_version = smi_path = ""
    devices: list[str] = []
    owners: list[str] = []
    traces: list[str] = []
    package_lines: list[str] = []
    tools: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key == "module-version":
            module_version = value.strip()
        elif key == "proc-version" and not proc_version:
            proc_version = value.strip()
        elif key == "proc-device":
            devices.extend(parse_proc_devices(value))
        elif key == "smi":
            smi_path = value.strip()
        elif key == "smi-owner":
            owners.extend(o for o in parse_dpkg_search(value) if o not in owners)
        elif key == "runfile" and value.strip():
            traces.append(value.strip())
        elif key == "package":
            package_lines.append(value)
        elif key == "tool":
            name, _, path = value.partition("\t")
            if name and path.strip():
                tools[name] = path.strip()
    return DriverProbe(
        module_version=module_version,
        proc_version=proc_version,
        proc_devices=tuple(devices),
        smi_path=smi_path,
        smi_owners=tuple(owners),
        runfile_traces=tuple(traces),
        packages=parse_dpkg_query("\n".join(package_lines)),
        tools=tools,
    )


def kernel_module_flavour(probe: DriverProbe) -> str:
    """`open`, `proprietary`, or "" when no module is loaded and no module package says."""
    if "nvidia-frontend" in probe.proc_devices:
        # Only the proprietary modules register nvidia-frontend.
        return "proprietary"
    if probe.proc_version:
        return "open" if "Open Kernel Module" in probe.proc_version else "proprietary"
    modules = [name for name in probe.packages if _MODULE_PACKAGE.match(name)]
    if any("open" in name for name in modules):
        return "open"
    return "proprietary" if modules else ""


def loaded_version(probe: DriverProbe) -> str:
    """The loaded kernel module's version (sysfs first, then /proc/driver/nvidia/version)."""
    if probe.module_version:
        return probe.module_version.strip()
    match = _VERSION.search(probe.proc_version.split("Kernel Module", 1)[-1])
    return match.group(0) if match else ""


def driver_origin(probe: DriverProbe) -> dict[str, Any]:
    """Classify the driver: package, runfile (NVIDIA's .run installer), image (present, owned by
    nothing), or none. Returns plain data for Ansible."""
    loaded = loaded_version(probe)
    driver_packages = {n: v for n, v in probe.packages.items() if _DRIVER_PACKAGE.match(n)}
    owner = next(
        (o for o in probe.smi_owners if o in driver_packages or _DRIVER_PACKAGE.match(o)), ""
    )
    if not owner and probe.smi_owners:
        owner = probe.smi_owners[0]
    module_packages = sorted(n for n in driver_packages if _MODULE_PACKAGE.match(n))
    traces = [t for t in probe.runfile_traces if t in _RUNFILE_TRACES]
    uninstaller = any(t in _UNINSTALLERS for t in traces)
    present = bool(loaded or probe.smi_path)
    evidence: list[str] = []
    if loaded:
        evidence.append(f"kernel module {loaded} loaded")
    if probe.smi_path:
        evidence.append(
            f"nvidia-smi at {probe.smi_path} owned by {owner}"
            if owner
            else f"nvidia-smi at {probe.smi_path} owned by no package"
        )
    package = ""
    if owner:
        origin, package = "package", owner
    elif present and (uninstaller or traces):
        origin = "runfile"
        evidence.append("NVIDIA installer traces: " + ", ".join(traces))
    elif present and module_packages and not probe.smi_path:
        origin, package = "package", module_packages[0]
    elif present:
        origin = "image"
    elif module_packages or driver_packages:
        # Installed but not loaded (e.g. waiting for a reboot): still the package manager's.
        origin, package = "package", (module_packages or sorted(driver_packages))[0]
    elif uninstaller:
        origin = "runfile"
        evidence.append("NVIDIA installer traces: " + ", ".join(traces))
    else:
        origin = "none"
    package_version = upstream_version(probe.packages.get(package, "")) if package else ""
    if package:
        evidence.append(f"package {package} {probe.packages.get(package, '?')} installed")
    return {
        "origin": origin,
        "foreign": origin in FOREIGN_ORIGINS,
        "version": loaded or package_version,
        "loaded_version": loaded,
        "package": package,
        "package_version": package_version,
        "driver_packages": sorted(driver_packages),
        "smi_path": probe.smi_path,
        "kernel_modules": kernel_module_flavour(probe),
        "evidence": "; ".join(evidence) if evidence else "no NVIDIA driver found",
    }


def _removal_hint(origin: str) -> str:
    if origin == "runfile":
        return "remove it with `nvidia-uninstall` (NVIDIA's installer)"
    return "boot the node from an image without a driver (this one is not installed by a package)"


def driver_plan(
    found: Mapping[str, Any],
    *,
    host: str,
    foreign_mode: str,
    branch: str,
    version: str = "",
    kernel_modules: str = "",
) -> dict[str, Any]:
    """What the role does: `install` (packages, the role's own driver or none yet), `adopt` (a
    foreign driver that matches the pins: repository, install and holds skipped) or `refuse`.
    `problems` lists every reason the run must stop, each naming the host and the fix."""
    origin = str(found.get("origin", "none"))
    if origin not in FOREIGN_ORIGINS:
        return {"action": "install", "problems": [], "summary": _install_summary(found)}
    what = (
        f"an NVIDIA driver {found.get('version') or '(version unknown)'}"
        + (f" ({found['kernel_modules']} kernel modules)" if found.get("kernel_modules") else "")
        + f" that no package owns: origin {origin} ({found.get('evidence', '')})"
    )
    if foreign_mode != "adopt":
        return {
            "action": "refuse",
            "problems": [
                f"{host}: found {what}. nvidia_driver installs packages and will not install "
                f"them over it (nvidia_driver_foreign: {foreign_mode}). Fix: set "
                "nvidia_driver_foreign: adopt to keep this driver (checked against "
                f"nvidia_driver_branch {branch}"
                + (f" and nvidia_driver_version {version}" if version else "")
                + f", then left alone), or {_removal_hint(origin)} and rerun."
            ],
            "summary": f"refuse: {what}",
        }
    problems: list[str] = []
    found_version = str(found.get("version") or "")
    if not found_version:
        problems.append(
            f"{host}: nvidia_driver_foreign is adopt but the version of the {origin} driver "
            "cannot be read (no /sys/module/nvidia/version: the module is not loaded). "
            "Fix: load the driver (modprobe nvidia, or reboot) and rerun."
        )
    elif found_version.split(".")[0] != str(branch):
        problems.append(
            f"{host}: the {origin} driver is {found_version}, outside nvidia_driver_branch "
            f'{branch}. Fix: set nvidia_driver_branch: "{found_version.split(".")[0]}" for this '
            f"host (and a CUDA toolkit it supports), or {_removal_hint(origin)} and rerun with "
            "nvidia_driver_foreign: refuse."
        )
    elif version and found_version != version:
        problems.append(
            f"{host}: the {origin} driver is {found_version}, not nvidia_driver_version "
            f'{version}. Fix: set nvidia_driver_version: "{found_version}" (or empty) for this '
            "host, or replace the driver by hand; sglfleet does not change an adopted driver."
        )
    flavour = str(found.get("kernel_modules") or "")
    if flavour and kernel_modules and flavour != kernel_modules:
        problems.append(
            f"{host}: the {origin} driver uses the {flavour} kernel modules, not "
            f"nvidia_driver_kernel_modules {kernel_modules}. "
            f"Fix: set nvidia_driver_kernel_modules: {flavour} for this host."
        )
    return {
        "action": "adopt",
        "problems": problems,
        "summary": (
            f"adopt: {what}; NVIDIA's repository, the driver packages and their holds are skipped"
        ),
    }


def _install_summary(found: Mapping[str, Any]) -> str:
    if found.get("origin") == "package":
        return (
            f"install: the driver comes from package {found.get('package')} "
            f"{found.get('package_version')}; the role keeps it at the pinned branch/version"
        )
    return "install: no NVIDIA driver on the host; the role installs the pinned packages"


_TOOL_FIXES = {
    "systemctl": "boot the node with systemd as PID 1 (Debian/Ubuntu package systemd-sysv)",
    "modprobe": "install the kmod package (apt-get install kmod)",
    "dpkg-query": "sglfleet supports Debian and Ubuntu hosts only (dpkg)",
    "apt-get": "sglfleet supports Debian and Ubuntu hosts only (apt)",
    "nvidia-smi": "install the driver's utilities (nvidia_driver does for a packaged driver)",
    "update-grub": "install grub (grub2-common with grub-pc or grub-efi-amd64), or set "
    "host_tuning_kernel_args: [] where the node boots without grub",
    "update-initramfs": "install initramfs-tools",
    "dkms": "install dkms (the nvidia_driver role does with the driver packages)",
}


def missing_tools(
    tools: Mapping[str, str], needed: Iterable[str], *, host: str, why: str
) -> list[str]:
    """One problem per needed command absent from `tools` (name -> path found by `command -v`)."""
    return [
        f"{host}: `{name}` is not installed (needed {why}). Fix: "
        + _TOOL_FIXES.get(name, f"install the package that provides {name}")
        + "."
        for name in needed
        if not str(tools.get(name) or "").strip()
    ]


def persistenced_command(unit_text: str) -> dict[str, str]:
    """The packaged nvidia-persistenced unit's binary and `--user` (Debian: nvpd, Ubuntu and
    NVIDIA's repository: nvidia-persistenced), read from the unit file itself: the first file of
    `systemctl cat`, drop-ins (ours included) ignored. Empty strings where the unit says nothing."""
    binary = user = ""
    in_first_file = seen_file = False
    for raw in unit_text.splitlines():
        line = raw.strip()
        if line.startswith("# /"):
            if seen_file:
                break
            seen_file = in_first_file = True
            continue
        if seen_file and not in_first_file:
            continue
        if not line.startswith("ExecStart=") or line == "ExecStart=":
            continue
        argv = line.split("=", 1)[1].lstrip("-@:+!").split()
        if not argv:
            continue
        binary, user = argv[0], ""
        for index, arg in enumerate(argv[1:], start=1):
            if arg in ("--user", "-u") and index + 1 < len(argv):
                user = argv[index + 1]
            elif arg.startswith("--user="):
                user = arg.split("=", 1)[1]
    return {"binary": binary, "user": user}
