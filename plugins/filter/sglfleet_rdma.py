"""Ansible filters of rdma_network and nccl_tuning: decisions from a host's raw probes.

Thin wrappers over the pure functions in sglfleet.gpudirect and sglfleet.nccl, which the unit
tests run against captured data from a real GPU host (tests/fixtures/metal/).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from ansible.errors import AnsibleFilterError  # noqa: E402

from sglfleet.gpudirect import as_text, dkms_missing, doca_repository, gpudirect_plan  # noqa: E402
from sglfleet.nccl import merge_nccl_conf  # noqa: E402


def sglfleet_gpudirect_plan(
    mode: str,
    stack: str,
    kallsyms: Any,
    kernel_release: str,
    nvidia_version: Any,
    dkms: Any = "",
    reboot_pending: bool = False,
) -> dict[str, Any]:
    """{mechanism, load_peermem, rebuild_nvidia_dkms, pending, problems, evidence}."""
    return gpudirect_plan(
        str(mode),
        str(stack),
        as_text(kallsyms),
        str(kernel_release or ""),
        as_text(nvidia_version),
        as_text(dkms),
        bool(reboot_pending),
    ).as_dict()


def sglfleet_doca_repository(
    base_url: str,
    version: str,
    distribution: str,
    distribution_version: str,
    architecture: str,
    os_label: str = "",
    arch_label: str = "",
) -> dict[str, str]:
    """{url, os_label, arch_label} of DOCA's apt folder for the host."""
    try:
        return doca_repository(
            base_url,
            str(version),
            distribution,
            str(distribution_version),
            architecture,
            os_label,
            arch_label,
        )
    except ValueError as error:
        raise AnsibleFilterError(
            f"{error}. Fix: set rdma_network_doca_os_label / rdma_network_doca_arch_label"
        ) from error


def sglfleet_dkms_missing(dkms: Any, modules: list[str], kernel: str) -> list[str]:
    """Modules not shown as installed for `kernel` by `dkms status`."""
    return dkms_missing(as_text(dkms), [str(m) for m in modules], str(kernel))


def sglfleet_nccl_conf_merge(
    existing: Any, managed: dict[str, Any], header: str = ""
) -> dict[str, Any]:
    """{content, kept, overridden, replaced_legacy} of the merged /etc/nccl.conf."""
    text = as_text(existing)
    return merge_nccl_conf(text, {str(k): str(v) for k, v in managed.items()}, header)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_gpudirect_plan": sglfleet_gpudirect_plan,
            "sglfleet_doca_repository": sglfleet_doca_repository,
            "sglfleet_dkms_missing": sglfleet_dkms_missing,
            "sglfleet_nccl_conf_merge": sglfleet_nccl_conf_merge,
        }
