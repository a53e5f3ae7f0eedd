"""Ansible filters for the serving unit: device coverage and the DeepGEMM precompile decision."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[2] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from sglfleet.device_access import parse_ls_nodes, uncovered  # noqa: E402
from sglfleet.jit import uses_deep_gemm  # noqa: E402


def sglfleet_devices_uncovered(ls_output: str, proc_devices: str, entries: list[str]) -> list[str]:
    """`ls -ln` of the device nodes + /proc/devices + DeviceAllow entries -> "PATH (c MAJ:MIN)"."""
    nodes = parse_ls_nodes(ls_output)
    return [
        f"{node.path} ({node.kind} {node.major}:{node.minor})"
        for node in uncovered(list(entries), proc_devices, nodes)
    ]


def sglfleet_uses_deep_gemm(model_config: Any, server_args: list[str]) -> bool:
    """config.json text (or mapping) of the model + the group's server flags -> precompile?"""
    return uses_deep_gemm(model_config, list(server_args))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "sglfleet_devices_uncovered": sglfleet_devices_uncovered,
            "sglfleet_uses_deep_gemm": sglfleet_uses_deep_gemm,
        }
