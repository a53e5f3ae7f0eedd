"""Typed inventory model: what an inventory may say, validated before any host is touched."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A serving group's role: plain serving, or one side of a prefill/decode pair.
Mode = Literal["regular", "prefill", "decode"]


class Secret:
    """A value that must never be printed: vault-encrypted or marked secret in the inventory."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__


REDACTED = "<redacted>"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class Host(StrictModel):
    """One machine of the inventory, with the hardware facts the plan needs."""

    name: str
    ansible_host: str | None = None
    fabric_address: str | None = None
    fabric_interface: str | None = None
    rdma_hcas: tuple[str, ...] = ()
    gpu_count: int = 0
    gpu_model: str | None = None
    gpu_memory_gb: float | None = None
    simulated_gpus: bool = False
    groups: tuple[str, ...] = ()
    vars: dict[str, Any] = Field(default_factory=dict)


class ModelSpec(StrictModel):
    """A model the cluster serves: where its weights come from and how large they are."""

    name: str
    hub: Literal["huggingface", "modelscope", "mirror", "local"] = "huggingface"
    repo_id: str | None = None
    revision: str = "main"
    mirror_path: str | None = None
    weights_gb: float
    kv_cache_reserve_gb: float | None = None
    served_name: str | None = None
    trust_remote_code: bool = False


class Disaggregation(StrictModel):
    transfer_backend: Literal["mooncake", "nixl", "ascend", "fake"] = "mooncake"
    ib_device: str | None = None
    bootstrap_port: int = 8998


class ServingGroupSpec(StrictModel):
    """One entry of `sglfleet_serving_groups`. Hosts beyond `nodes_per_replica` become replicas."""

    name: str
    model: str
    hosts: tuple[str, ...]
    nodes_per_replica: int | None = None
    tp: int | None = None
    dp: int = 1
    ep: int | None = None
    attn_dp: int | None = None
    mode: Mode = "regular"
    port: int = 30000
    dist_init_port: int = 20000
    nccl_port: int | None = None
    mem_fraction_static: float | None = None
    server_args: dict[str, Any] = Field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    disaggregation: Disaggregation | None = None
    router: bool = True


class RouterSpec(StrictModel):
    host: str
    port: int = 8000
    metrics_port: int = 29000
    policy: Literal["cache_aware", "round_robin", "random", "power_of_two"] = "cache_aware"
    bind_address: str = "0.0.0.0"
    retries: int = 3
    circuit_breaker_failures: int = 5
    health_check_interval_s: int = 10


class Inventory(StrictModel):
    """An inventory as loaded from disk: hosts, their groups, and the cluster-wide variables."""

    path: str
    cluster_name: str
    hosts: dict[str, Host]
    models: dict[str, ModelSpec]
    serving_groups: tuple[ServingGroupSpec, ...]
    router: RouterSpec | None
    sglang_version: str
    engine: Literal["sglang", "rehearsal"] = "sglang"
    install_dir: str = "/opt/sglfleet"
    config_dir: str = "/etc/sglfleet"
    models_dir: str = "/var/lib/sglfleet/models"
    api_key: Secret | None = None
    global_vars: dict[str, Any] = Field(default_factory=dict)


class NodePlan(StrictModel):
    host: str
    node_rank: int
    argv: tuple[str, ...]
    server_args: tuple[str, ...]
    env: dict[str, str]
    # NCCL/Gloo variables the node gets from nccl_tuning's env file (shown, not in server.env).
    nccl_env: dict[str, str] = Field(default_factory=dict)
    unit: str
    service_address: str
    port: int


class MemoryFit(StrictModel):
    fits: bool
    weights_gb: float
    kv_cache_reserve_gb: float
    usable_gb: float
    gpu_count: int
    gpu_memory_gb: float
    message: str
    hint: str | None = None


class GroupPlan(StrictModel):
    name: str
    model: str
    spec_name: str
    mode: Mode
    nnodes: int
    tp: int
    dist_init_addr: str | None
    api_url: str
    memory: MemoryFit
    nodes: tuple[NodePlan, ...]
    # Where the split checks read the model's architecture (None: unknown model, not checked).
    architecture_source: str | None = None


class ClusterPlan(StrictModel):
    cluster_name: str
    serving_groups: tuple[GroupPlan, ...]
    router_url: str | None
    endpoint: str | None
