"""Ansible filters of the nvidia_driver role: kernel headers, Secure Boot, DKMS, package names.

The decisions live in sglfleet.kernel (pure, unit-tested on tests/fixtures/metal/ captures).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.kernel import (  # noqa: E402
    dkms_nvidia,
    driver_packages,
    headers_packages,
    secure_boot_problem,
    secure_boot_state,
)


def sglfleet_kernel_headers(
    kernel_release: str, distribution: str, distribution_version: str
) -> dict[str, Any]:
    """{running, metapackage, flavour, problem} for this kernel (see sglfleet.kernel)."""
    return headers_packages(str(kernel_release), str(distribution), str(distribution_version))


def sglfleet_secure_boot_state(efi_present: Any, efivar_b64: Any = "", mokutil: Any = "") -> str:
    """enabled / disabled / no-efi / unknown."""
    return secure_boot_state(bool(efi_present), str(efivar_b64 or ""), str(mokutil or ""))


def sglfleet_secure_boot_problem(state: str, mok_enrolled: Any = False) -> str:
    """ "" when DKMS modules can load, else why not."""
    return secure_boot_problem(str(state), bool(mok_enrolled))


def sglfleet_dkms_nvidia(
    dkms_status: Any, kernel_release: str, driver_version: Any = ""
) -> dict[str, Any]:
    """{ok, entries, problem}: the NVIDIA module installed for the running kernel."""
    return dkms_nvidia(str(dkms_status or ""), str(kernel_release), str(driver_version or ""))


def sglfleet_driver_packages(
    templates: list[str], branch: Any, source: str, distribution: str
) -> list[str]:
    """Driver package names for the branch ("-{branch}" dropped for NVIDIA's Ubuntu >= 590)."""
    return driver_packages([str(t) for t in templates], str(branch), str(source), str(distribution))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_kernel_headers": sglfleet_kernel_headers,
            "sglfleet_secure_boot_state": sglfleet_secure_boot_state,
            "sglfleet_secure_boot_problem": sglfleet_secure_boot_problem,
            "sglfleet_dkms_nvidia": sglfleet_dkms_nvidia,
            "sglfleet_driver_packages": sglfleet_driver_packages,
        }
