"""GPUDirect RDMA and DOCA decisions from a host's raw probes (pure; used by roles/rdma_network).

The role reads /proc/kallsyms (peer-memory and DMA-BUF symbols), the kernel release,
/proc/driver/nvidia/version and `dkms status`; these functions decide what to do. They are
tested against tests/fixtures/metal/ (a real H200 host and written variants).

Why these rules:
- nvidia-peermem registers through `ib_register_peer_memory_client`, which only the ib_core of
  DOCA-OFED / MLNX_OFED exports; on the inbox ib_core its init returns -EINVAL by design.
- DMA-BUF (NVIDIA's recommended path) needs the open kernel modules, Linux >= 5.12 and an ib_core
  with `ib_umem_dmabuf_get`; rdma-core from the distribution is enough.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["dmabuf", "peermem", "off"]
MODES: tuple[str, ...] = ("dmabuf", "peermem", "off")

PEER_MEMORY_SYMBOL = "ib_register_peer_memory_client"
DMABUF_SYMBOLS = ("ib_umem_dmabuf_get", "dma_buf_export")
DMABUF_MIN_KERNEL = (5, 12)

# DOCA's repository folders per CPU architecture (host packages; `dpu-arm64` is for BlueField).
DOCA_ARCHITECTURES: dict[str, str] = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "arm64-sbsa",
    "arm64": "arm64-sbsa",
}


def kallsyms_names(text: str) -> set[str]:
    """Symbol names of /proc/kallsyms lines ('addr type name [module]'); module tags dropped."""
    names: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2])
    return names


def kernel_version(release: str) -> tuple[int, int] | None:
    """(major, minor) of a `uname -r` string such as '6.8.0-49-generic'."""
    match = re.match(r"\s*(\d+)\.(\d+)", release or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def module_flavour(version_text: str) -> Literal["open", "proprietary", "none"]:
    """Flavour of the loaded NVIDIA module from /proc/driver/nvidia/version ('none': not loaded)."""
    first = (version_text or "").strip().splitlines()[:1]
    if not first or "NVRM version" not in first[0]:
        return "none"
    return "open" if "Open Kernel Module" in first[0] else "proprietary"


def driver_version(version_text: str) -> str:
    match = re.search(r"Kernel Module(?: for \w+)?\s+([0-9]+(?:\.[0-9]+)+)", version_text or "")
    return match.group(1) if match else ""


@dataclass(frozen=True)
class DkmsModule:
    name: str
    version: str
    kernel: str
    arch: str
    state: str


def dkms_status(text: str) -> list[DkmsModule]:
    """Rows of `dkms status`: 'name/ver, kernel, arch: state' (and the older 'name, ver, ...')."""
    rows: list[DkmsModule] = []
    for line in (text or "").splitlines():
        head, sep, state = line.partition(":")
        if not sep:
            continue
        parts = [p.strip() for p in head.split(",")]
        if "/" in parts[0]:
            name, version = parts[0].split("/", 1)
            rest = parts[1:]
        elif len(parts) >= 2:
            name, version, rest = parts[0], parts[1], parts[2:]
        else:
            continue
        kernel = rest[0] if rest else ""
        arch = rest[1] if len(rest) > 1 else ""
        rows.append(DkmsModule(name, version, kernel, arch, state.strip().split(" ")[0]))
    return rows


def dkms_missing(text: str, modules: Iterable[str], kernel: str) -> list[str]:
    """Modules of `modules` that `dkms status` does not show installed for `kernel`."""
    installed = {r.name for r in dkms_status(text) if r.kernel == kernel and r.state == "installed"}
    return [m for m in modules if m not in installed]


@dataclass
class GpuDirectPlan:
    """What rdma_network does about GPUDirect RDMA on one host."""

    requested: str
    mechanism: str
    load_peermem: bool = False
    rebuild_nvidia_dkms: bool = False
    pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpudirect_plan(
    mode: str,
    stack: str,
    kallsyms: str,
    kernel_release: str,
    nvidia_version: str,
    dkms: str = "",
    reboot_pending: bool = False,
) -> GpuDirectPlan:
    """Decide GPUDirect RDMA for one host.

    `problems` stop the role (the host cannot do what was asked); `pending` means it will work
    after the gated reboot (DOCA's ib_core or a rebuilt driver not running yet).
    """
    symbols = kallsyms_names(kallsyms)
    flavour = module_flavour(nvidia_version)
    version = kernel_version(kernel_release)
    nvidia_dkms = [r for r in dkms_status(dkms) if r.name in ("nvidia", "nvidia-open")]
    evidence: dict[str, Any] = {
        "kernel": kernel_release.strip(),
        "module_flavour": flavour,
        "driver_version": driver_version(nvidia_version),
        "peer_memory_symbols": PEER_MEMORY_SYMBOL in symbols,
        "dmabuf_symbols": [s for s in DMABUF_SYMBOLS if s in symbols],
        "nvidia_dkms": sorted({f"{r.name}/{r.version}" for r in nvidia_dkms}),
    }
    plan = GpuDirectPlan(requested=mode, mechanism=mode, evidence=evidence)
    if mode not in MODES:
        plan.problems.append(f"rdma_network_gpudirect={mode} is not one of {', '.join(MODES)}")
        return plan
    if mode == "off":
        return plan
    if flavour == "none":
        what = "the NVIDIA driver is not loaded"
        if reboot_pending:
            plan.pending.append(f"{what} yet (a reboot is pending); GPUDirect is set up after it")
        else:
            plan.problems.append(
                f"{what} (/proc/driver/nvidia/version is missing), so GPUDirect RDMA cannot work"
            )
        return plan
    if mode == "dmabuf":
        if flavour != "open":
            plan.problems.append(
                "DMA-BUF needs NVIDIA's open kernel modules; this host runs the proprietary ones"
                f" ({evidence['driver_version'] or 'unknown version'})"
            )
        if version is None or version < DMABUF_MIN_KERNEL:
            plan.problems.append(
                "DMA-BUF needs Linux >= 5.12; the running kernel is"
                f" {kernel_release.strip() or '?'}"
            )
        if "ib_umem_dmabuf_get" not in symbols:
            plan.problems.append(
                "ib_core exports no ib_umem_dmabuf_get (not loaded, or built without DMA-BUF"
                " support), so the HCA cannot register GPU memory through DMA-BUF"
            )
        return plan
    # peermem
    if stack != "doca":
        plan.problems.append(
            "nvidia-peermem needs the peer-memory API of DOCA-OFED/MLNX_OFED's ib_core; with the"
            " inbox stack its init returns -EINVAL by design"
        )
        return plan
    if not nvidia_dkms:
        plan.problems.append(
            "the NVIDIA kernel modules are not built by DKMS here (driver from an image or"
            " NVIDIA's .run installer), so they cannot be rebuilt against DOCA's ib_core"
        )
        return plan
    # Rebuilt once per DOCA release, kernel and driver (the role keeps a stamp file).
    plan.rebuild_nvidia_dkms = True
    if PEER_MEMORY_SYMBOL not in symbols:
        plan.pending.append(
            f"the running ib_core has no {PEER_MEMORY_SYMBOL}: DOCA's ib_core and the NVIDIA"
            " modules rebuilt against it take effect after the gated reboot"
        )
        return plan
    plan.load_peermem = True
    return plan


def doca_repository(
    base_url: str,
    version: str,
    distribution: str,
    distribution_version: str,
    architecture: str,
    os_label: str = "",
    arch_label: str = "",
) -> dict[str, str]:
    """DOCA's apt folder for a host: <base>/<version>/<os label>/<arch>/.

    Ubuntu folders carry the release (ubuntu24.04); Debian ones the major release (debian12).
    Older DOCA releases were built per Debian point release: set the label explicitly there.
    """
    distro = distribution.strip().lower()
    if not os_label:
        if distro == "ubuntu":
            os_label = f"ubuntu{distribution_version.strip()}"
        elif distro == "debian":
            os_label = f"debian{distribution_version.strip().split('.')[0]}"
        else:
            raise ValueError(f"DOCA has no folder naming rule for {distribution}: set the label")
    if not arch_label:
        arch_label = DOCA_ARCHITECTURES.get(architecture.strip().lower(), "")
        if not arch_label:
            raise ValueError(f"DOCA has no host packages known for architecture {architecture}")
    url = f"{base_url.rstrip('/')}/{version}/{os_label}/{arch_label}/"
    return {"url": url, "os_label": os_label, "arch_label": arch_label}


def as_text(value: Any) -> str:
    """A probe's text whether Ansible hands over a string, bytes or a registered result."""
    if isinstance(value, Mapping):
        return str(value.get("stdout") or value.get("content") or "")
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)
