"""CUDA toolkit, DCGM and fabric manager decisions: pure functions, shared by plan and roles.

The plan-time checks (`gpu_stack_checks`, called from `validate.inventory_checks`) and the
`sglfleet_gpu_stack` filter plugin the cuda_toolkit, dcgm and fabric_manager roles use both read
the tables below, so there is one table of each kind. Sources are named in docs/node-stack.md.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from typing import Any

from sglfleet.errors import Problem
from sglfleet.models import Inventory

GPU_NODES_GROUP = "sglfleet_gpu_nodes"

# The lowest driver branch each CUDA toolkit release needs (NVIDIA's CUDA toolkit release notes,
# table "CUDA Toolkit and Corresponding Driver Versions", Linux x86_64, GA releases). The newest
# CUDA a branch supports follows from it: 580 -> 13.0, which is what nvidia-smi reports on the
# captured H200 (tests/fixtures/metal/h200-ubuntu2404/nvidia-smi-q.xml, cuda_version 13.0).
CUDA_MIN_DRIVER_BRANCH: dict[str, int] = {
    "12.4": 550,
    "12.5": 555,
    "12.6": 560,
    "12.8": 570,
    "12.9": 575,
    "13.0": 580,
    "13.1": 590,
}

# The CUDA toolkit (major.minor) each pinned SGLang release is built on, from its wheel's
# METADATA: sglang 0.5.23 requires torch==2.14.1, flashinfer_python[cu13], cuda-python>=13.0,
# nvidia-cutlass-dsl[cu13], nvshmem4py-cu13. JIT kernels (FlashInfer, DeepGEMM) compile with the
# host toolkit, whose major must match the wheels' CUDA major and be at least this release.
SGLANG_CUDA: dict[str, str] = {
    "0.5.23": "13.0",
}

DCGM_EXPORTER_SOURCES = ("auto", "package", "url")
FABRIC_MANAGER_MODES = ("auto", "always", "never")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URL = re.compile(r"^(https?|file)://")
_DCGM_CUDA_FLAVOUR = re.compile(r"-cuda(\d+)$")
_DRIVER_VERSION = re.compile(r"\b(\d{3})\.(\d+)(?:\.(\d+))?\b")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def newest_cuda_for_branch(branch: int | str) -> str | None:
    """The newest CUDA toolkit in the table that a driver branch supports (None: none known)."""
    supported = [cuda for cuda, low in CUDA_MIN_DRIVER_BRANCH.items() if int(branch) >= low]
    return max(supported, key=_version_key) if supported else None


def cuda_required_by_sglang(sglang_version: str) -> str | None:
    """The CUDA toolkit a pinned SGLang release needs, or None for a release not in the table."""
    return SGLANG_CUDA.get(sglang_version)


def driver_branch_of(value: Any) -> int | None:
    """580 from "580", 580, "580.95.05" or "580-open"; None when it names no branch."""
    match = re.match(r"^\s*(\d{3})", str(value))
    return int(match.group(1)) if match else None


Finding = tuple[str, str, str]  # (variable, problem, fix)


def cuda_toolkit_problems(
    version: str, driver_branch: Any, sglang_version: str | None
) -> list[Finding]:
    """Why a toolkit version cannot serve on this node; empty when it can."""
    if version not in CUDA_MIN_DRIVER_BRANCH:
        known = ", ".join(CUDA_MIN_DRIVER_BRANCH)
        return [
            (
                "cuda_toolkit_version",
                f"cuda_toolkit_version {version!r} is not a known toolkit",
                f"use one of {known}",
            )
        ]
    problems: list[Finding] = []
    branch = driver_branch_of(driver_branch)
    low = CUDA_MIN_DRIVER_BRANCH[version]
    if branch is None:
        problems.append(
            (
                "nvidia_driver_branch",
                f"the driver branch {driver_branch!r} is not a number such as 580",
                'set nvidia_driver_branch to the driver branch (e.g. "580")',
            )
        )
    elif branch < low:
        newest = newest_cuda_for_branch(branch) or "none in the table"
        problems.append(
            (
                "nvidia_driver_branch",
                f"CUDA {version} needs driver branch {low} or newer, the node runs {branch}"
                f" (newest CUDA it supports: {newest})",
                f"set nvidia_driver_branch to {low} or newer, or cuda_toolkit_version to {newest}",
            )
        )
    needed = cuda_required_by_sglang(sglang_version) if sglang_version else None
    if needed is not None:
        needed_major = needed.split(".")[0]
        if version.split(".")[0] != needed_major or _version_key(version) < _version_key(needed):
            problems.append(
                (
                    "cuda_toolkit_version",
                    f"SGLang {sglang_version} is built on CUDA {needed} (its wheels pin"
                    f" cu{needed_major} builds), cuda_toolkit_version is {version}: its JIT"
                    " kernels would compile against the wrong CUDA",
                    f'set cuda_toolkit_version to "{needed}" (driver branch'
                    f" {CUDA_MIN_DRIVER_BRANCH.get(needed, '?')} or newer)",
                )
            )
    return problems


def dcgm_exporter_source(source: str, url: str | None) -> str:
    """`auto` resolves to `url` when a binary URL is given, else NVIDIA's package."""
    if source == "auto":
        return "url" if url else "package"
    return source


def dcgm_problems(variables: Mapping[str, Any], driver_branch: Any) -> list[Finding]:
    """Inventory settings with which the dcgm role cannot converge."""
    problems: list[Finding] = []
    packages = variables.get("dcgm_packages") or []
    if not isinstance(packages, list) or not packages:
        problems.append(
            (
                "dcgm_packages",
                "dcgm_packages is empty",
                "list the DCGM packages (roles/dcgm/defaults)",
            )
        )
        packages = []
    branch = driver_branch_of(driver_branch)
    newest = newest_cuda_for_branch(branch) if branch is not None else None
    for package in packages:
        flavour = _DCGM_CUDA_FLAVOUR.search(str(package))
        if flavour and newest and int(flavour.group(1)) > int(newest.split(".")[0]):
            problems.append(
                (
                    "dcgm_packages",
                    f"{package} is DCGM built for CUDA {flavour.group(1)}, driver branch {branch}"
                    f" supports CUDA {newest} at most",
                    f"use the -cuda{newest.split('.')[0]} DCGM packages, or a newer"
                    " nvidia_driver_branch",
                )
            )
    if not bool(variables.get("dcgm_exporter_enabled", True)):
        return problems
    source = str(variables.get("dcgm_exporter_source", "auto"))
    url = str(variables.get("dcgm_exporter_url") or "")
    checksum = str(variables.get("dcgm_exporter_checksum") or "")
    if source not in DCGM_EXPORTER_SOURCES:
        problems.append(
            (
                "dcgm_exporter_source",
                f"dcgm_exporter_source is {source!r}",
                "use auto (NVIDIA's package unless dcgm_exporter_url is set), package or url",
            )
        )
    elif dcgm_exporter_source(source, url) == "url":
        if not _URL.match(url):
            problems.append(
                (
                    "dcgm_exporter_url",
                    f"dcgm_exporter_source is url but dcgm_exporter_url is {url or '(empty)'!r}",
                    "set dcgm_exporter_url to an http(s):// or file:// URL of a dcgm-exporter"
                    " binary, or dcgm_exporter_source: package (NVIDIA's"
                    " datacenter-gpu-manager-exporter)",
                )
            )
        if not _SHA256.match(checksum):
            problems.append(
                (
                    "dcgm_exporter_checksum",
                    "the dcgm-exporter binary has no SHA-256 in dcgm_exporter_checksum",
                    "set dcgm_exporter_checksum to the binary's sha256sum (64 hex digits)",
                )
            )
    port = variables.get("dcgm_exporter_port", 9400)
    if not isinstance(port, int) or not 0 < port < 65536:
        problems.append(
            ("dcgm_exporter_port", f"dcgm_exporter_port is {port!r}", "use a TCP port, 1-65535")
        )
    return problems


def fabric_manager_packages(
    distribution: str, branch: int | str, source: str = "nvidia_repo"
) -> list[str]:
    """The fabric manager packages for a driver branch, from where the driver comes.

    NVIDIA's repository publishes branch 580 and newer without the branch suffix on every
    distribution (`nvidia-fabricmanager`, `libnvidia-nscq`; `nvidia-fabricmanager-580` is then a
    virtual package that cannot take a version) and older Ubuntu branches with it
    (`nvidia-fabricmanager-570`). Ubuntu's own archive (`source: distribution`) keeps the suffix,
    and its fabric manager depends on its `-server` driver, the one that source installs. Debian's
    packages never had it.
    """
    if distribution == "Ubuntu" and (source == "distribution" or int(branch) < 580):
        return [f"nvidia-fabricmanager-{branch}", f"libnvidia-nscq-{branch}"]
    return ["nvidia-fabricmanager", "libnvidia-nscq"]


def fabric_manager_package_specs(
    distribution: str, driver_version: str, source: str = "nvidia_repo"
) -> list[str]:
    """apt specs at exactly the driver's version (`NAME=VERSION-*`, any packaging revision).

    Which origin provides them is the driver role's apt preferences' business: with NVIDIA's
    repository, the distribution's nvidia-* packages are refused (priority -1), so Ubuntu's
    fabric manager, which depends on the `-server` driver, is never picked.
    """
    branch = driver_branch_of(driver_version)
    if branch is None:
        raise ValueError(f"{driver_version!r} is not a driver version such as 580.95.05")
    names = fabric_manager_packages(distribution, branch, source)
    return [f"{name}={driver_version}-*" for name in names]


def nvswitch_functions(pci_lines: Iterable[str], known_ids: Iterable[str]) -> list[str]:
    """`vendor:device` IDs of NVSwitch PCI functions among sysfs lines.

    Accepts `10de:22a3` (the role's probe) or `0000:07:00.0 0x10de 0x22a3 0x068000` (the metal
    capture's pci-devices).
    """
    wanted = {i.lower() for i in known_ids}
    found: list[str] = []
    for line in pci_lines:
        fields = line.split()
        if len(fields) >= 3 and fields[1].lower().startswith("0x"):
            pci_id = f"{fields[1][2:]}:{fields[2][2:]}".lower()
        elif fields:
            pci_id = fields[0].replace("0x", "").lower()
        else:
            continue
        if pci_id in wanted:
            found.append(pci_id)
    return found


def fabric_states(smi_xml: str) -> list[str]:
    """Each GPU's NVLink fabric state from `nvidia-smi -q -x` (Completed, In Progress, N/A ...)."""
    try:
        root = ElementTree.fromstring(smi_xml)
    except ElementTree.ParseError:
        return []
    return [(gpu.findtext("fabric/state") or "").strip() for gpu in root.iter("gpu")]


def fabric_ready(smi_xml: str) -> bool:
    """True once every GPU reports the fabric state Completed (the fabric manager's work)."""
    states = fabric_states(smi_xml)
    return bool(states) and all(state == "Completed" for state in states)


def loaded_driver_version(text: str | None) -> str:
    """The loaded module's version, from /sys/module/nvidia/version or /proc/driver/nvidia/version.

    Empty when neither names one (no driver loaded).
    """
    match = _DRIVER_VERSION.search(text or "")
    return match.group(0) if match else ""


def gpu_service_gate(
    *,
    simulated: bool,
    loaded: str | None,
    installed: str | None,
    reboot_markers: Iterable[str] = (),
) -> dict[str, Any]:
    """Whether a GPU daemon (fabric manager, nv-hostengine) may start now, and why (not).

    It may not while a reboot is pending (a marker of the driver or host tuning roles, or a loaded
    module that is not the installed driver), nor without a loaded driver.
    """
    markers = sorted(str(m).rsplit("/", 1)[-1] for m in reboot_markers)
    loaded_version = loaded_driver_version(loaded)
    if simulated:
        return {"start": False, "reason": "simulated host (sglfleet_simulated_gpus: no GPU)"}
    if markers:
        return {
            "start": False,
            "reason": f"a reboot is pending (reboot markers: {', '.join(markers)})",
        }
    if not loaded_version:
        return {
            "start": False,
            "reason": "no NVIDIA kernel module is loaded (/sys/module/nvidia/version is missing)",
        }
    if installed and loaded_version != installed:
        return {
            "start": False,
            "reason": f"the loaded driver module is {loaded_version}, the installed driver"
            f" {installed} (a reboot is pending)",
        }
    return {"start": True, "reason": f"driver {loaded_version} is loaded"}


def _host_problems(name: str, variables: Mapping[str, Any], sglang: str | None) -> list[Problem]:
    branch = variables.get("nvidia_driver_branch", "580")
    findings = cuda_toolkit_problems(str(variables.get("cuda_toolkit_version", "")), branch, sglang)
    findings += dcgm_problems(variables, branch)
    mode = variables.get("fabric_manager_mode", "auto")
    if mode not in FABRIC_MANAGER_MODES:
        findings.append(
            (
                "fabric_manager_mode",
                f"fabric_manager_mode is {mode!r}",
                "use auto (where NVSwitches are found), always or never",
            )
        )
    return [Problem(message, fix, host=name, variable=var) for var, message, fix in findings]


def gpu_stack_checks(inv: Inventory) -> list[Problem]:
    """Plan-time checks of every GPU node's CUDA toolkit, DCGM and fabric manager settings."""
    problems: list[Problem] = []
    for name, host in inv.hosts.items():
        if GPU_NODES_GROUP in host.groups:
            problems += _host_problems(name, host.vars, inv.sglang_version)
    return problems
