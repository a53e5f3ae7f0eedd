"""NCCL and Gloo environment for one node of a serving group (pure): the one owner of its values.

Everything the inventory determines is derived here, once, by the controller's plan (`nccl_env`
of the node's launch): the declared interface and HCAs, a pinned GID index, the tuning values and
`nccl_tuning_extra_env`. roles/nccl_tuning receives that dict as `nccl_tuning_planned_env`, writes
it as given (/etc/sglfleet/nccl.env, and the NCCL_* ones into /etc/nccl.conf) and fills in only
the HOST_DERIVED keys the plan left unset, from what it finds on the host. No key is computed in
both places.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sglfleet.models import Host

# Planner input (inventory variable; defaults in roles/nccl_tuning/defaults) -> NCCL variable.
TUNING_VARIABLES: dict[str, str] = {
    "nccl_tuning_ib_qps_per_connection": "NCCL_IB_QPS_PER_CONNECTION",
    "nccl_tuning_ib_timeout": "NCCL_IB_TIMEOUT",
    "nccl_tuning_ib_retry_cnt": "NCCL_IB_RETRY_CNT",
    "nccl_tuning_nvls_enable": "NCCL_NVLS_ENABLE",
    "nccl_tuning_debug": "NCCL_DEBUG",
}

# The only keys roles/nccl_tuning may add, and only where the plan left them unset: the host's
# answers (the interface on the route to rank 0, discovered HCAs, the discovered RoCE GID index).
HOST_DERIVED: tuple[str, ...] = (
    "NCCL_SOCKET_IFNAME",
    "GLOO_SOCKET_IFNAME",
    "NCCL_IB_HCA",
    "NCCL_IB_GID_INDEX",
)


def _text(value: Any) -> str | None:
    """An inventory value as the env file writes it; None for unset, empty or templated values."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    if isinstance(value, bool):
        return str(int(value))
    text = str(value).strip()
    if not text or "{{" in text or "{%" in text:
        return None
    return text


def exact_list(names: tuple[str, ...] | list[str]) -> str:
    """NCCL's exact-match list syntax: '=mlx5_0,mlx5_3' (plain 'mlx5_1' would also pick mlx5_10)."""
    clean = [n.strip().lstrip("=") for n in names if n and n.strip()]
    return "=" + ",".join(clean) if clean else ""


def node_nccl_env(host: Host, rank0: Host, variables: dict[str, Any]) -> dict[str, str]:
    """The NCCL/Gloo variables the inventory determines for the node; the role writes them as given.

    `variables` are the cluster-wide ones (role defaults under group_vars/all); the host's own
    merged variables (its groups and host_vars) win over them, as in Ansible. Templated values
    ("{{ ... }}") are not planned: planner inputs are plain data.
    """
    merged: dict[str, Any] = {**variables, **host.vars}
    env: dict[str, str] = {}
    interface = (host.fabric_interface or "").strip()
    if interface:
        env["NCCL_SOCKET_IFNAME"] = "=" + interface.lstrip("=")
        env["GLOO_SOCKET_IFNAME"] = interface.lstrip("=")
    if host.rdma_hcas:
        env["NCCL_IB_HCA"] = exact_list(host.rdma_hcas)
    gid_index = _text(merged.get("nccl_tuning_ib_gid_index"))
    # "discovered" is filled in on the host at converge time; empty leaves the GID to NCCL.
    if gid_index is not None and gid_index != "discovered":
        env["NCCL_IB_GID_INDEX"] = gid_index
    for variable, name in TUNING_VARIABLES.items():
        value = _text(merged.get(variable))
        if value is not None:
            env[name] = value
    extra = merged.get("nccl_tuning_extra_env") or {}
    if isinstance(extra, Mapping):
        for name, raw in extra.items():
            value = _text(raw)
            if value is not None:
                env[str(name)] = value
    return env


# /etc/nccl.conf: sglfleet owns the block between these lines; every other line is the user's.
CONF_BEGIN = "# BEGIN sglfleet managed: these keys win over the same keys set below"
CONF_END = "# END sglfleet managed"
CONF_KEPT = "# Kept from the previous file (keys sglfleet does not manage):"


def _conf_key(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#") or "=" not in text:
        return None
    return text.split("=", 1)[0].strip() or None


def merge_nccl_conf(existing: str, managed: Mapping[str, str], header: str = "") -> dict[str, Any]:
    """The new /etc/nccl.conf: sglfleet's keys, then every line of the user's it does not manage.

    A user's line setting a key sglfleet manages is dropped (sglfleet's value wins) and reported
    in `overridden`; the role also keeps a backup of the previous file. Running it on its own
    output gives the same text (idempotent).
    """
    inside = False
    user_lines: list[str] = []
    # A file of sglfleet's before the markers existed: all of it was ours (the backup keeps it).
    legacy = CONF_BEGIN not in existing and "Ansible managed" in existing
    for line in [] if legacy else existing.splitlines():
        stripped = line.strip()
        if stripped == CONF_BEGIN:
            inside = True
            continue
        if stripped == CONF_END:
            inside = False
            continue
        if inside or stripped == CONF_KEPT:
            continue
        user_lines.append(line.rstrip())
    overridden: dict[str, str] = {}
    kept: list[str] = []
    body: list[str] = []
    for line in user_lines:
        key = _conf_key(line)
        if key is not None and key in managed:
            overridden[key] = line.strip().split("=", 1)[1]
            continue
        if key is not None:
            kept.append(key)
        body.append(line)
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    lines = [CONF_BEGIN]
    lines += [header.rstrip()] if header.strip() else []
    lines += [f"{key}={value}" for key, value in sorted(managed.items())]
    lines.append(CONF_END)
    if body:
        lines += [CONF_KEPT, *body]
    return {
        "content": "\n".join(lines) + "\n",
        "kept": kept,
        "overridden": overridden,
        "replaced_legacy": legacy,
    }
