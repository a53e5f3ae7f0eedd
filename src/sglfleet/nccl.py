"""NCCL and Gloo environment for one node of a serving group (pure; mirrors roles/nccl_tuning)."""

from __future__ import annotations

from typing import Any

from sglfleet.models import Host


def node_nccl_env(host: Host, rank0: Host, variables: dict[str, Any]) -> dict[str, str]:
    """The NCCL/Gloo variables the node's SGLang unit gets, from inventory and role defaults."""
    env: dict[str, str] = {}
    if host.fabric_interface:
        env["NCCL_SOCKET_IFNAME"] = host.fabric_interface
        env["GLOO_SOCKET_IFNAME"] = host.fabric_interface
    if host.rdma_hcas:
        env["NCCL_IB_HCA"] = ",".join(host.rdma_hcas)
    mapping = {
        "nccl_tuning_ib_gid_index": "NCCL_IB_GID_INDEX",
        "nccl_tuning_ib_qps_per_connection": "NCCL_IB_QPS_PER_CONNECTION",
        "nccl_tuning_ib_timeout": "NCCL_IB_TIMEOUT",
        "nccl_tuning_ib_retry_cnt": "NCCL_IB_RETRY_CNT",
        "nccl_tuning_nvls_enable": "NCCL_NVLS_ENABLE",
        "nccl_tuning_debug": "NCCL_DEBUG",
    }
    for var, name in mapping.items():
        value = variables.get(var)
        if value is not None and value != "":
            env[name] = str(int(value)) if isinstance(value, bool) else str(value)
    for name, value in (variables.get("nccl_tuning_extra_env") or {}).items():
        env[str(name)] = str(value)
    return env
