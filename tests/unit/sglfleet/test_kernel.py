"""Kernel headers, Secure Boot, DKMS and driver package names: decisions on captured data."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from sglfleet.kernel import (
    dkms_nvidia,
    driver_packages,
    headers_packages,
    secure_boot_problem,
    secure_boot_state,
)

ROOT = Path(__file__).resolve().parents[3]
METAL = ROOT / "tests" / "fixtures" / "metal"
H200 = METAL / "h200-ubuntu2404"
UBUNTU2204_SB = METAL / "written-kernel-ubuntu2204-hwe-secureboot"
DEBIAN12 = METAL / "written-kernel-debian12"
ROLE_VARS = ROOT / "roles" / "nvidia_driver" / "vars" / "main.yml"


def uname_release(folder: Path) -> str:
    """`uname -a` -> the release (uname -r), as Ansible's kernel fact has it."""
    return (folder / "uname").read_text().split()[2]


def os_release(folder: Path) -> tuple[str, str]:
    """(distribution, version) as Ansible's facts name them."""
    fields = dict(
        line.split("=", 1)
        for line in (folder / "os-release").read_text().splitlines()
        if "=" in line
    )
    name = {"ubuntu": "Ubuntu", "debian": "Debian"}[fields["ID"].strip('"')]
    return name, fields["VERSION_ID"].strip('"')


def secure_boot_inputs(folder: Path) -> tuple[bool, str, str]:
    """The capture's `secure-boot` file -> what the role's probes return (stat, slurp, mokutil)."""
    text = (folder / "secure-boot").read_text()
    efi = "cannot access '/sys/firmware/efi'" not in text
    efivar = ""
    for line in text.splitlines():
        numbers = line.split()
        if len(numbers) == 5 and all(n.isdigit() for n in numbers):
            efivar = base64.b64encode(bytes(int(n) for n in numbers)).decode()
    mokutil_file = folder / "mokutil-sb-state"
    return efi, efivar, mokutil_file.read_text() if mokutil_file.exists() else ""


def installed_packages(folder: Path) -> set[str]:
    """Names with status `installed` in a `dpkg-query-nvidia` capture (tab separated)."""
    names = set()
    for line in (folder / "dpkg-query-nvidia").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].endswith(" installed"):
            names.add(parts[0])
    return names


# --- the real H200 machine -------------------------------------------------------------------


def test_h200_custom_kernel_has_no_metapackage_and_no_headers() -> None:
    kernel = uname_release(H200)
    assert kernel == "6.18.44-fc-v657-gpu"
    plan = headers_packages(kernel, *os_release(H200))
    assert plan["running"] == "linux-headers-6.18.44-fc-v657-gpu"
    assert plan["metapackage"] == ""
    assert "6.18.44-fc-v657-gpu" in plan["problem"]
    # dpkg-query found no linux-headers* there: the running kernel's headers would be missing.
    assert not any(name.startswith("linux-headers") for name in installed_packages(H200))
    assert plan["running"] not in installed_packages(H200)


def test_h200_has_no_efi_so_secure_boot_cannot_stop_it() -> None:
    state = secure_boot_state(*secure_boot_inputs(H200))
    assert state == "no-efi"
    assert secure_boot_problem(state, mok_enrolled=False) == ""


def test_h200_without_dkms_the_check_names_the_kernel() -> None:
    # `dkms` is absent there (pid1: `command -v dkms` found nothing): no status, no module.
    assert "dkms" not in (H200 / "pid1").read_text().split("exe=")[1].split()
    result = dkms_nvidia("", uname_release(H200))
    assert not result["ok"]
    assert "6.18.44-fc-v657-gpu" in result["problem"]


# --- written variants ---------------------------------------------------------------------------


def test_ubuntu2204_hwe_kernel_takes_the_hwe_metapackage() -> None:
    plan = headers_packages(uname_release(UBUNTU2204_SB), *os_release(UBUNTU2204_SB))
    assert plan == {
        "kernel": "6.8.0-52-generic",
        "running": "linux-headers-6.8.0-52-generic",
        "flavour": "generic",
        "metapackage": "linux-headers-generic-hwe-22.04",
        "problem": "",
    }
    installed = installed_packages(UBUNTU2204_SB)
    # The metapackage is there, the running kernel's headers are not: the role installs them.
    assert [p for p in (plan["running"], plan["metapackage"]) if p not in installed] == [
        plan["running"]
    ]


def test_secure_boot_on_stops_until_the_key_is_enrolled() -> None:
    efi, efivar, mokutil = secure_boot_inputs(UBUNTU2204_SB)
    assert secure_boot_state(efi, efivar, mokutil) == "enabled"
    # Either probe alone is enough.
    assert secure_boot_state(efi, efivar, "") == "enabled"
    assert secure_boot_state(efi, "", mokutil) == "enabled"
    assert "Secure Boot is on" in secure_boot_problem("enabled", mok_enrolled=False)
    assert secure_boot_problem("enabled", mok_enrolled=True) == ""
    # EFI but nothing readable: unknown is refused too, unless the key is enrolled.
    assert secure_boot_state(True, "", "") == "unknown"
    assert secure_boot_problem("unknown", mok_enrolled=False) != ""


def test_stale_dkms_build_names_the_running_kernel_and_what_was_built() -> None:
    result = dkms_nvidia((UBUNTU2204_SB / "dkms-status").read_text(), uname_release(UBUNTU2204_SB))
    assert not result["ok"]
    assert "6.8.0-52-generic" in result["problem"]
    assert "nvidia/580.95.05 installed" in result["problem"]
    assert "headers" in result["problem"]


def test_debian12_stock_kernel_headers_secure_boot_off_dkms_built() -> None:
    kernel = uname_release(DEBIAN12)
    plan = headers_packages(kernel, *os_release(DEBIAN12))
    assert (plan["running"], plan["metapackage"]) == (
        "linux-headers-6.1.0-28-amd64",
        "linux-headers-amd64",
    )
    assert {plan["running"], plan["metapackage"]} <= installed_packages(DEBIAN12)
    state = secure_boot_state(*secure_boot_inputs(DEBIAN12))
    assert state == "disabled"
    assert secure_boot_problem(state, mok_enrolled=False) == ""
    status = (DEBIAN12 / "dkms-status").read_text()
    assert dkms_nvidia(status, kernel, "580.95.05")["ok"]
    wrong = dkms_nvidia(status, kernel, "580.65.06")
    assert not wrong["ok"] and "580.65.06" in wrong["problem"]


@pytest.mark.parametrize(
    ("release", "distribution", "version", "metapackage"),
    [
        ("6.8.0-60-generic", "Ubuntu", "24.04", "linux-headers-generic"),
        ("6.11.0-29-generic", "Ubuntu", "24.04", "linux-headers-generic-hwe-24.04"),
        ("5.15.0-130-generic", "Ubuntu", "22.04", "linux-headers-generic"),
        ("6.8.0-60-generic-64k", "Ubuntu", "24.04", "linux-headers-generic-64k"),
        ("6.8.0-1017-aws", "Ubuntu", "24.04", "linux-headers-aws"),
        ("6.8.0-1020-nvidia", "Ubuntu", "24.04", "linux-headers-nvidia"),
        ("6.8.0-1020-nvidia", "Ubuntu", "22.04", "linux-headers-nvidia-hwe-22.04"),
        ("6.1.0-28-cloud-amd64", "Debian", "12", "linux-headers-cloud-amd64"),
        ("6.1.0-28-arm64", "Debian", "12", "linux-headers-arm64"),
        ("6.12.12+bpo-amd64", "Debian", "12", "linux-headers-amd64"),
        ("6.1.0-28-amd64", "Ubuntu", "24.04", ""),
        ("6.8.0-60-generic", "Debian", "12", ""),
    ],
)
def test_flavour_metapackages(
    release: str, distribution: str, version: str, metapackage: str
) -> None:
    plan = headers_packages(release, distribution, version)
    assert plan["metapackage"] == metapackage
    assert plan["running"] == f"linux-headers-{release}"
    assert bool(plan["problem"]) == (metapackage == "")


def test_dkms_status_formats_and_modules_that_are_not_the_driver() -> None:
    old_format = "nvidia, 510.47.03, 5.4.0-109-generic, x86_64: installed\n"
    assert dkms_nvidia(old_format, "5.4.0-109-generic")["ok"]
    warning = (
        "nvidia/580.95.05, 6.8.0-60-generic, x86_64: installed "
        "(WARNING! Diff between built and installed module!)"
    )
    assert dkms_nvidia(warning, "6.8.0-60-generic")["ok"]
    built_only = "nvidia/580.95.05, 6.8.0-60-generic, x86_64: built\n"
    assert "not installed" in dkms_nvidia(built_only, "6.8.0-60-generic")["problem"]
    others = (
        "nvidia-fs/2.26.6, 6.8.0-60-generic, x86_64: installed\n"
        "mlnx-ofed-kernel/25.07, 6.8.0-60-generic, x86_64: installed\n"
    )
    result = dkms_nvidia(others, "6.8.0-60-generic")
    assert not result["ok"] and result["entries"] == []
    for name in ("nvidia-open", "nvidia-current", "nvidia-current-open", "nvidia-tesla-535"):
        assert dkms_nvidia(
            f"{name}/580.95.05, 6.1.0-28-amd64, x86_64: installed", "6.1.0-28-amd64"
        )["ok"]


def role_package_templates() -> dict[str, dict[str, dict[str, list[str]]]]:
    data = yaml.safe_load(ROLE_VARS.read_text())
    templates: dict[str, dict[str, dict[str, list[str]]]] = data["_nvidia_driver_packages"]
    return templates


def test_580_keeps_the_branch_in_every_ubuntu_name() -> None:
    ubuntu = role_package_templates()["nvidia_repo"]["Ubuntu"]["open"]
    assert driver_packages(ubuntu, "580", "nvidia_repo", "Ubuntu") == [
        "nvidia-headless-580-open",
        "nvidia-dkms-580-open",
        "nvidia-kernel-common-580",
        "nvidia-compute-utils-580",
        "libnvidia-compute-580",
        "nvidia-utils-580",
    ]


def test_590_drops_the_branch_in_nvidias_ubuntu_names_only() -> None:
    templates = role_package_templates()
    nvidia_open = driver_packages(
        templates["nvidia_repo"]["Ubuntu"]["open"], "590", "nvidia_repo", "Ubuntu"
    )
    # NVIDIA's Driver Installation Guide r590, "Ubuntu 590 package renames".
    assert "nvidia-dkms-open" in nvidia_open and "libnvidia-compute" in nvidia_open
    assert not any("590" in name or "{" in name for name in nvidia_open)
    proprietary = driver_packages(
        templates["nvidia_repo"]["Ubuntu"]["proprietary"], "590", "nvidia_repo", "Ubuntu"
    )
    assert "nvidia-dkms" in proprietary
    # Ubuntu's own archive keeps the branch (nvidia-headless-590-server-open exists there).
    server = driver_packages(
        templates["distribution"]["Ubuntu"]["open"], "590", "distribution", "Ubuntu"
    )
    assert "nvidia-headless-590-server-open" in server
    debian = driver_packages(
        templates["nvidia_repo"]["Debian"]["open"], "590", "nvidia_repo", "Debian"
    )
    assert debian == templates["nvidia_repo"]["Debian"]["open"]


def load_filters() -> ModuleType:
    path = ROOT / "plugins" / "filter" / "sglfleet_kernel.py"
    spec = importlib.util.spec_from_file_location("sglfleet_kernel_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filters_take_what_the_role_probes_hand_them() -> None:
    filters = load_filters().FilterModule().filters()
    assert filters["sglfleet_secure_boot_state"](False, None, None) == "no-efi"
    assert filters["sglfleet_secure_boot_problem"]("enabled", False) != ""
    assert (
        filters["sglfleet_kernel_headers"]("6.1.0-28-amd64", "Debian", "12")["metapackage"]
        == "linux-headers-amd64"
    )
    assert not filters["sglfleet_dkms_nvidia"](None, "6.1.0-28-amd64", None)["ok"]
    assert filters["sglfleet_driver_packages"](
        ["nvidia-utils-{branch}"], 580, "nvidia_repo", "Ubuntu"
    ) == ["nvidia-utils-580"]
