"""Pure decisions of the nvidia_driver role about the kernel side of a GPU node.

Kernel headers (the running kernel's and the flavour metapackage that brings the next kernel's),
Secure Boot, the DKMS state of the NVIDIA module, and the driver package names by branch. The
role gathers the raw probes (uname, the EFI SecureBoot variable, mokutil, `dkms status`,
dpkg-query); these functions decide. Tests run them on tests/fixtures/metal/ captures.
"""

from __future__ import annotations

import base64
import re
from typing import Any

# Ubuntu's release kernels per LTS (GA); any other major.minor there is a HWE kernel.
UBUNTU_GA_KERNELS: dict[str, tuple[int, int]] = {"22.04": (5, 15), "24.04": (6, 8)}
# Ubuntu flavours whose metapackage has a -hwe-<release> variant.
UBUNTU_HWE_FLAVOURS = frozenset(
    {"generic", "lowlatency", "generic-64k", "lowlatency-64k", "nvidia"}
)
UBUNTU_FLAVOURS = UBUNTU_HWE_FLAVOURS | frozenset(
    {"nvidia-64k", "nvidia-lowlatency", "aws", "azure", "gcp", "gke", "oracle", "ibm", "kvm"}
)
DEBIAN_FLAVOURS = frozenset(
    {"amd64", "cloud-amd64", "rt-amd64", "arm64", "cloud-arm64", "rt-arm64", "arm64-16k"}
)
_UBUNTU_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(\d+)-([a-z0-9][a-z0-9-]*)$")
_DEBIAN_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\+bpo)?-(?:(\d+)-)?([a-z0-9][a-z0-9-]*)$")

# DKMS module names of the NVIDIA kernel module: Ubuntu's and NVIDIA's Ubuntu packages use
# `nvidia`; Debian's packaging `nvidia-current` / `nvidia-current-open`; NVIDIA's RPM/.run
# style `nvidia-open`; Debian's legacy `nvidia-tesla-<branch>`. Not nvidia-fs (GDS) or peermem.
_DKMS_NVIDIA = re.compile(r"^nvidia(-current|-tesla-\d+)?(-open)?$")
# `dkms status` lines: dkms >= 2.8 "name/version, kernel, arch: state"; older "name, version, ...".
_DKMS_LINE = re.compile(
    r"^(?P<name>[^/,\s]+)(?:/|,\s*)(?P<version>[^,:\s]+)"
    r"(?:,\s*(?P<kernel>[^,:\s]+)(?:,\s*(?P<arch>[^,:\s]+))?)?:\s*(?P<state>[a-z]+)(?P<rest>.*)$"
)

# Ubuntu packages of NVIDIA's CUDA repository drop the branch from their names from 590 on
# (NVIDIA Driver Installation Guide r590, "Ubuntu 590 and later packages").
UNSUFFIXED_FROM_BRANCH = 590


def headers_packages(
    kernel_release: str, distribution: str, distribution_version: str
) -> dict[str, Any]:
    """The headers packages a DKMS driver needs on this kernel.

    `running` is linux-headers-<uname -r>; `metapackage` the flavour's headers metapackage (it
    pulls the headers of every later kernel of that flavour), empty when the kernel is not one the
    distribution packages (then `problem` says so). apt runs with recommends off, and Debian's
    dkms only recommends linux-headers-amd64, so both are installed explicitly.
    """
    release = kernel_release.strip()
    result: dict[str, Any] = {
        "kernel": release,
        "running": f"linux-headers-{release}",
        "flavour": "",
        "metapackage": "",
        "problem": "",
    }
    if distribution == "Ubuntu":
        match = _UBUNTU_RELEASE.match(release)
        flavour = match.group(5) if match else ""
        if match and flavour in UBUNTU_FLAVOURS:
            result["flavour"] = flavour
            major_minor = (int(match.group(1)), int(match.group(2)))
            ga = UBUNTU_GA_KERNELS.get(distribution_version)
            hwe = ga is not None and major_minor != ga and flavour in UBUNTU_HWE_FLAVOURS
            suffix = f"-hwe-{distribution_version}" if hwe else ""
            result["metapackage"] = f"linux-headers-{flavour}{suffix}"
            return result
    elif distribution == "Debian":
        match = _DEBIAN_RELEASE.match(release)
        flavour = match.group(5) if match else ""
        if match and flavour in DEBIAN_FLAVOURS:
            result["flavour"] = flavour
            result["metapackage"] = f"linux-headers-{flavour}"
            return result
    result["problem"] = (
        f"kernel {release} is not a {distribution} {distribution_version} packaged kernel "
        "flavour, so no headers metapackage can follow it to the next kernel"
    )
    return result


def secure_boot_state(efi_present: bool, efivar_b64: str = "", mokutil: str = "") -> str:
    """`enabled`, `disabled`, `no-efi` (legacy BIOS boot: no Secure Boot) or `unknown`.

    `efivar_b64` is the SecureBoot-8be4df61-... EFI variable as slurp returns it (4 attribute
    bytes, then 1 = on); `mokutil` the output of `mokutil --sb-state` where installed.
    """
    if not efi_present:
        return "no-efi"
    raw = base64.b64decode(efivar_b64) if efivar_b64 else b""
    if len(raw) >= 5:
        return "enabled" if raw[4] == 1 else "disabled"
    text = mokutil.lower()
    if "secureboot enabled" in text:
        return "enabled"
    if "secureboot disabled" in text or "not supported" in text:
        return "disabled"
    return "unknown"


def secure_boot_problem(state: str, mok_enrolled: bool) -> str:
    """Why DKMS-built NVIDIA modules would not load under this Secure Boot state ("" = fine).

    DKMS modules are signed with a machine owner key (MOK) only the node's own firmware trusts
    after someone enrolled it at the console; without that, the kernel refuses to load them and
    the node comes back from the reboot without a driver. We stop before installing anything.
    """
    if state == "enabled" and not mok_enrolled:
        return (
            "Secure Boot is on, and the NVIDIA kernel modules built by DKMS are signed with a "
            "machine owner key (MOK) the firmware does not trust yet, so the kernel would refuse "
            "to load them"
        )
    if state == "unknown" and not mok_enrolled:
        return (
            "the Secure Boot state could not be read (EFI present, no SecureBoot variable, no "
            "mokutil), so DKMS-built NVIDIA modules might be refused at boot"
        )
    return ""


def dkms_nvidia(dkms_status: str, kernel_release: str, driver_version: str = "") -> dict[str, Any]:
    """Whether `dkms status` shows the NVIDIA module installed for the running kernel.

    `driver_version` (e.g. 580.95.05), when given, must match the module's version. Returns ok,
    the NVIDIA lines found and a `problem` naming the kernel and what is missing.
    """
    kernel = kernel_release.strip()
    entries: list[dict[str, str]] = []
    for line in dkms_status.splitlines():
        match = _DKMS_LINE.match(line.strip())
        if not match or not _DKMS_NVIDIA.match(match.group("name")):
            continue
        entries.append(
            {
                "name": match.group("name"),
                "version": match.group("version"),
                "kernel": match.group("kernel") or "",
                "state": match.group("state"),
            }
        )
    for_kernel = [e for e in entries if e["kernel"] == kernel]
    installed = [e for e in for_kernel if e["state"] == "installed"]
    if driver_version:
        installed = [e for e in installed if e["version"].startswith(driver_version)]
    if installed:
        return {"ok": True, "entries": entries, "problem": ""}
    if not entries:
        problem = (
            f"dkms knows no NVIDIA module at all, so nothing was built for kernel {kernel} "
            "(is the nvidia DKMS package installed?)"
        )
    elif not for_kernel:
        seen = ", ".join(f"{e['name']}/{e['version']} {e['state']}" for e in entries)
        problem = (
            f"the NVIDIA DKMS module was not built for the running kernel {kernel} ({seen}); the "
            f"headers for {kernel} were probably missing when the driver was installed"
        )
    else:
        seen = ", ".join(f"{e['name']}/{e['version']} {e['state']}" for e in for_kernel)
        want = f" at version {driver_version}" if driver_version else ""
        problem = (
            f"the NVIDIA DKMS module is not installed{want} for kernel {kernel} "
            f"(dkms status: {seen})"
        )
    return {"ok": False, "entries": entries, "problem": problem}


def driver_package_name(name: str, branch: str, source: str, distribution: str) -> str:
    """A driver package name template ("nvidia-utils-{branch}") for this branch and source.

    NVIDIA's Ubuntu packages from 590 on drop the branch (nvidia-utils-580 -> nvidia-utils,
    nvidia-dkms-580-open -> nvidia-dkms-open); Ubuntu's own archive keeps it (-590-server).
    """
    if (
        source == "nvidia_repo"
        and distribution == "Ubuntu"
        and str(branch).isdigit()
        and int(branch) >= UNSUFFIXED_FROM_BRANCH
    ):
        return name.replace("-{branch}", "")
    return name.replace("{branch}", str(branch))


def driver_packages(templates: list[str], branch: str, source: str, distribution: str) -> list[str]:
    """driver_package_name over a list of templates."""
    return [driver_package_name(t, str(branch), source, distribution) for t in templates]
