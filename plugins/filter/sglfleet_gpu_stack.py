"""Ansible filters: CUDA toolkit, DCGM and fabric manager decisions (sglfleet.gpu_stack)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet import gpu_stack  # noqa: E402


def sglfleet_cuda_toolkit_problems(
    version: str, driver_branch: Any, sglang_version: str | None = None
) -> list[str]:
    """The toolkit's problems as `problem. Fix: fix` lines (empty: the toolkit fits)."""
    return [
        f"{message}. Fix: {fix}"
        for _, message, fix in gpu_stack.cuda_toolkit_problems(
            str(version), driver_branch, sglang_version or None
        )
    ]


def sglfleet_dcgm_problems(variables: dict[str, Any], driver_branch: Any) -> list[str]:
    """The DCGM settings' problems as `problem. Fix: fix` lines."""
    return [
        f"{message}. Fix: {fix}"
        for _, message, fix in gpu_stack.dcgm_problems(variables, driver_branch)
    ]


def sglfleet_apt_candidate(policy_output: str) -> str:
    """The candidate version `apt-cache policy PACKAGE` prints; empty when there is none."""
    for line in policy_output.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate":
            value = value.strip()
            return "" if value in ("", "(none)") else value
    return ""


def sglfleet_gpu_service_gate(
    loaded: str | None,
    installed: str | None = None,
    reboot_markers: Iterable[str] = (),
    simulated: bool = False,
) -> dict[str, Any]:
    """`{start, reason}`: whether a GPU daemon may start now (sglfleet.gpu_stack)."""
    return gpu_stack.gpu_service_gate(
        simulated=bool(simulated),
        loaded=loaded,
        installed=installed or None,
        reboot_markers=reboot_markers,
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_cuda_toolkit_problems": sglfleet_cuda_toolkit_problems,
            "sglfleet_dcgm_problems": sglfleet_dcgm_problems,
            "sglfleet_dcgm_exporter_source": gpu_stack.dcgm_exporter_source,
            "sglfleet_apt_candidate": sglfleet_apt_candidate,
            "sglfleet_fabric_manager_packages": gpu_stack.fabric_manager_packages,
            "sglfleet_fabric_manager_package_specs": gpu_stack.fabric_manager_package_specs,
            "sglfleet_nvswitch_functions": gpu_stack.nvswitch_functions,
            "sglfleet_loaded_driver_version": gpu_stack.loaded_driver_version,
            "sglfleet_fabric_states": gpu_stack.fabric_states,
            "sglfleet_fabric_ready": gpu_stack.fabric_ready,
            "sglfleet_gpu_service_gate": sglfleet_gpu_service_gate,
        }
