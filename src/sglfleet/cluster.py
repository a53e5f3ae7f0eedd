"""The inventory's shape: engine instances (replicas), their hosts, addresses, sizes and options.

The primitives that the value checks (validate), the firewall rules (security) and the plan
(topology) share. Pure; depends on the typed models and the hardware catalog only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sglfleet import hardware
from sglfleet.models import Host, Inventory, MemoryFit, ModelSpec, ServingGroupSpec

DEFAULT_MEM_FRACTION_STATIC = 0.88
DEFAULT_KV_RESERVE_FRACTION = 0.10


def gpu_memory_gb(host: Host) -> float | None:
    """The host's per-GPU memory: declared, else looked up from its GPU model name."""
    if host.gpu_memory_gb:
        return float(host.gpu_memory_gb)
    return hardware.memory_gb(host.gpu_model)


@dataclass(frozen=True)
class Replica:
    """One SGLang engine instance: a serving-group spec applied to one set of hosts."""

    name: str
    spec: ServingGroupSpec
    hosts: tuple[str, ...]


def expand_replicas(spec: ServingGroupSpec) -> list[Replica]:
    """Split a spec's hosts into engine instances of `nodes_per_replica` hosts each."""
    per = spec.nodes_per_replica or len(spec.hosts) or 1
    chunks = [spec.hosts[i : i + per] for i in range(0, len(spec.hosts), per)]
    if len(chunks) <= 1:
        return [Replica(spec.name, spec, spec.hosts)]
    return [Replica(f"{spec.name}-{i}", spec, chunk) for i, chunk in enumerate(chunks)]


def service_address(host: Host) -> str:
    """The address SGLang binds and the router dials: declared, else ansible_host, else name."""
    declared = host.vars.get("sglfleet_service_address")
    return str(declared or host.ansible_host or host.name)


def replicas(inv: Inventory) -> list[Replica]:
    """Every engine instance of the inventory, group by group."""
    out: list[Replica] = []
    for spec in inv.serving_groups:
        out.extend(expand_replicas(spec))
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option_tokens(options: dict[str, Any]) -> list[str]:
    """`server_args` of a group as command-line tokens (true -> flag, false/None -> left out)."""
    tokens: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            tokens.append(_flag(key))
        elif isinstance(value, list | tuple):
            tokens.append(_flag(key))
            tokens.extend(str(v) for v in value)
        else:
            tokens += [_flag(key), str(value)]
    return tokens


def group_tp(inv: Inventory, replica: Replica) -> int:
    """The group's tensor-parallel size: declared, else its GPUs over its data-parallel size."""
    spec = replica.spec
    if spec.tp:
        return spec.tp
    gpus = sum(inv.hosts[h].gpu_count for h in replica.hosts if h in inv.hosts)
    dp = spec.dp if not spec.attn_dp else 1
    return max(1, gpus // max(1, dp))


def memory_fit(inv: Inventory, replica: Replica, model: ModelSpec) -> MemoryFit:
    """Whether the model's weights and KV-cache reserve fit the replica's GPUs, and why."""
    hosts = [inv.hosts[h] for h in replica.hosts if h in inv.hosts]
    gpu_count = sum(h.gpu_count for h in hosts)
    sizes = {gpu_memory_gb(h) for h in hosts}
    per_gpu = min((s for s in sizes if s), default=0.0)
    fraction = replica.spec.mem_fraction_static or DEFAULT_MEM_FRACTION_STATIC
    usable = gpu_count * per_gpu * fraction
    reserve = (
        model.kv_cache_reserve_gb
        if model.kv_cache_reserve_gb is not None
        else model.weights_gb * DEFAULT_KV_RESERVE_FRACTION
    )
    need = model.weights_gb + reserve
    fits = gpu_count > 0 and per_gpu > 0 and need <= usable
    message = (
        f"{model.name}: {model.weights_gb:.0f} GB weights + {reserve:.0f} GB KV-cache reserve"
        f" = {need:.0f} GB vs {gpu_count} x {per_gpu:.0f} GB x {fraction:.2f} usable"
        f" = {usable:.0f} GB: {'fits' if fits else 'DOES NOT FIT'}"
    )
    hint = None
    if not fits and per_gpu > 0:
        gpus_needed = int(-(-need // (per_gpu * fraction)))
        hint = (
            f"give group {replica.name} at least {gpus_needed} GPUs of {per_gpu:.0f} GB"
            f" (e.g. more nodes with tp={_next_pow2(gpus_needed)}), larger GPUs,"
            " or a smaller or more quantized model"
        )
    elif per_gpu == 0:
        hint = "set sglfleet_gpu_model (e.g. H100-SXM-80GB) or sglfleet_gpu_memory_gb on each host"
    return MemoryFit(
        fits=fits,
        weights_gb=model.weights_gb,
        kv_cache_reserve_gb=reserve,
        usable_gb=usable,
        gpu_count=gpu_count,
        gpu_memory_gb=per_gpu,
        message=message,
        hint=hint,
    )


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p
