"""The inventory's variables, one table: names, types, defaults, meanings.

This is the one place a variable of the inventory is declared. The loader (`sglfleet.inventory`)
takes the names it knows and the defaults it fills in from here; `python -m sglfleet.docgen` writes
the variable tables of docs/inventory.md and the role defaults that mirror an inventory value
(`MIRRORS`, between `# generated: inventory-defaults` and `# end: inventory-defaults` in the role's
`defaults/main.yml`) from here; tests/unit/sglfleet/test_schema.py holds the typed models
(`sglfleet.models`) and every `sglfleet_X | default(...)` in the playbooks to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sglfleet_sglang import SGLANG_VERSION

Scope = Literal["host", "cluster"]


@dataclass(frozen=True)
class Variable:
    """One inventory variable. `field` is the typed attribute it fills (Host or Inventory)."""

    name: str
    scope: Scope
    kind: str
    meaning: str
    field: str | None = None
    default: Any = None
    default_text: str | None = None  # shown instead of `default` (a computed or absent default)

    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return "—"
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        if isinstance(self.default, str):
            return f'`"{self.default}"`' if self.default[:1].isdigit() else f"`{self.default}`"
        return f"`{self.default}`"


HOST_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "ansible_host",
        "host",
        "str",
        "SSH address (Ansible's own). Two hosts may not share it with the same `ansible_port`.",
        field="ansible_host",
    ),
    Variable(
        "sglfleet_gpu_count",
        "host",
        "int ≥ 0",
        "GPUs in the node. A serving host needs at least 1.",
        field="gpu_count",
        default=0,
    ),
    Variable(
        "sglfleet_gpu_model",
        "host",
        "str",
        "e.g. `H100-SXM5-80GB`, `H200-SXM-141GB`, `L40S-48GB`; the memory check looks the size up"
        " by name fragment in the GPU catalog below.",
        field="gpu_model",
    ),
    Variable(
        "sglfleet_gpu_memory_gb",
        "host",
        "number > 0",
        "One GPU's memory in GB; required when the model name is not in the GPU catalog.",
        field="gpu_memory_gb",
    ),
    Variable(
        "sglfleet_fabric_address",
        "host",
        "IP address",
        "The node's address on the GPU fabric; required on every member of a multi-node group;"
        " unique per host.",
        field="fabric_address",
    ),
    Variable(
        "sglfleet_fabric_interface",
        "host",
        "str",
        "Interface for NCCL/Gloo sockets (e.g. `ibp24s0`).",
        field="fabric_interface",
    ),
    Variable(
        "sglfleet_rdma_hcas",
        "host",
        "list of str",
        "RDMA devices for NCCL (`[mlx5_0, mlx5_3, ...]`).",
        field="rdma_hcas",
        default_text="`[]`",
    ),
    Variable(
        "sglfleet_simulated_gpus",
        "host",
        "bool",
        "Lab/test hosts: GPU and kernel steps are skipped with a visible reason.",
        field="simulated_gpus",
        default=False,
    ),
    Variable(
        "sglfleet_service_address",
        "host",
        "str",
        "Address SGLang binds and the router dials.",
        default_text="`ansible_host`, else the host name",
    ),
)

CLUSTER_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "sglfleet_cluster_name",
        "cluster",
        "str",
        "Shown in plans and status.",
        field="cluster_name",
        default_text="directory name",
    ),
    Variable(
        "sglfleet_sglang_version",
        "cluster",
        "str",
        "The pinned SGLang.",
        field="sglang_version",
        default=SGLANG_VERSION,
    ),
    Variable(
        "sglfleet_engine",
        "cluster",
        "str",
        "`sglang`, or `rehearsal` (the lab's CPU stand-in).",
        field="engine",
        default="sglang",
    ),
    Variable(
        "sglfleet_models",
        "cluster",
        "mapping",
        "Models by name, see below.",
        field="models",
        default_text="`{}`",
    ),
    Variable(
        "sglfleet_serving_groups",
        "cluster",
        "list",
        "Serving groups, see below.",
        field="serving_groups",
        default_text="`[]`",
    ),
    Variable(
        "sglfleet_router",
        "cluster",
        "mapping",
        "The router, see below. Required when there is more than one engine instance.",
        field="router",
        default_text="none",
    ),
    Variable(
        "sglfleet_api_key",
        "cluster",
        "str",
        "API key of servers and router; keep it in a vault.",
        field="api_key",
        default_text="none",
    ),
    Variable(
        "sglfleet_install_dir",
        "cluster",
        "absolute path",
        "Where sglfleet installs its venvs and tools on a node.",
        field="install_dir",
        default="/opt/sglfleet",
    ),
    Variable(
        "sglfleet_config_dir",
        "cluster",
        "absolute path",
        "Where sglfleet writes its configuration on a node.",
        field="config_dir",
        default="/etc/sglfleet",
    ),
    Variable(
        "sglfleet_models_dir",
        "cluster",
        "absolute path",
        "Where weights are staged on a node (`<dir>/<model>` is SGLang's `--model-path`).",
        field="models_dir",
        default="/var/lib/sglfleet/models",
    ),
    Variable(
        "sglfleet_allow_privileged_ports",
        "cluster",
        "bool",
        "Allow ports below 1024. The shipped units run unprivileged, so also grant them"
        " `CAP_NET_BIND_SERVICE` before using it.",
        default=False,
    ),
    Variable(
        "sglfleet_lab",
        "cluster",
        "mapping",
        "Set by `sglfleet lab up`.",
        default_text="none",
    ),
)

VARIABLES: dict[str, Variable] = {v.name: v for v in (*HOST_VARIABLES, *CLUSTER_VARIABLES)}


def default(name: str) -> Any:
    """The loader's default for an inventory variable."""
    return VARIABLES[name].default


@dataclass(frozen=True)
class Mirror:
    """A role default that repeats an inventory default (the playbooks pass the inventory's value;
    the role's own default keeps `ansible-playbook` of the role alone in step)."""

    role: str
    variable: str
    source: str
    template: str = "{}"

    def value(self) -> str:
        return self.template.format(default(self.source))


MIRRORS: tuple[Mirror, ...] = (
    Mirror("sglang_server", "sglang_server_version", "sglfleet_sglang_version"),
    Mirror("sglang_server", "sglang_server_engine", "sglfleet_engine"),
    Mirror("sglang_server", "sglang_server_install_dir", "sglfleet_install_dir"),
    Mirror("sglang_server", "sglang_server_config_dir", "sglfleet_config_dir"),
    Mirror("sglang_server", "sglang_server_nccl_env_file", "sglfleet_config_dir", "{}/nccl.env"),
    Mirror("sglang_router", "sglang_router_install_dir", "sglfleet_install_dir", "{}/router"),
    Mirror("sglang_router", "sglang_router_config_dir", "sglfleet_config_dir", "{}/router"),
    Mirror("model_weights", "model_weights_local_dir", "sglfleet_models_dir"),
    Mirror("model_weights", "model_weights_venv", "sglfleet_install_dir", "{}/weights-venv"),
    Mirror("firewall", "firewall_config_dir", "sglfleet_config_dir"),
    Mirror("nccl_tuning", "nccl_tuning_env_file", "sglfleet_config_dir", "{}/nccl.env"),
    Mirror(
        "rdma_network",
        "rdma_network_discovery_path",
        "sglfleet_config_dir",
        "{}/rdma-discovery.json",
    ),
)


@dataclass(frozen=True)
class Key:
    """One key of a nested inventory value (a model, a serving group, the router)."""

    name: str
    meaning: str
    default_text: str | None = None  # shown instead of the typed model's default


MODEL_KEYS: tuple[Key, ...] = (
    Key("hub", "`huggingface`, `modelscope`, `mirror` or `local`."),
    Key("repo_id", "Required for `huggingface`/`modelscope` (e.g. `deepseek-ai/DeepSeek-R1`)."),
    Key(
        "revision",
        "For hub models: the **40-character commit SHA** (branches and tags move; the"
        " model_weights role refuses anything else, so validation does too).",
    ),
    Key(
        "mirror_path",
        "For `mirror`/`local`: absolute directory holding the files and `.sglfleet-hub-tree.json`.",
    ),
    Key("weights_gb", "Size of the weights in GB (> 0), for the memory check."),
    Key(
        "kv_cache_reserve_gb",
        "KV cache the group must leave room for (≥ 0).",
        "10% of weights",
    ),
    Key("served_name", "`--served-model-name`.", "the name"),
    Key("trust_remote_code", "`--trust-remote-code`."),
)

GROUP_KEYS: tuple[Key, ...] = (
    Key("name", "Unique. Errors name the group as `sglfleet_serving_groups[NAME].key`."),
    Key("model", "A key of `sglfleet_models`."),
    Key("hosts", "Inventory hosts, each once; the order is the node rank."),
    Key(
        "nodes_per_replica",
        "Hosts per engine instance; must divide the number of hosts.",
        "all hosts",
    ),
    Key("tp", "Tensor parallel size; `tp x dp` must equal the instance's GPUs.", "GPUs / dp"),
    Key("dp", "Data parallel size (≥ 1)."),
    Key("ep", "Expert parallel size (≥ 1)."),
    Key("attn_dp", "DP-attention size (≥ 1); must divide `tp`."),
    Key(
        "mode",
        "`regular`, `prefill` or `decode` (PD disaggregation needs both, each with"
        " `disaggregation`).",
    ),
    Key("port", "API port on every member."),
    Key(
        "dist_init_port",
        "Multi-node rendezvous on rank 0's fabric address; with `attn_dp` SGLang also binds the 6"
        " ports above it.",
    ),
    Key("nccl_port", "Fixed NCCL port.", "SGLang picks"),
    Key(
        "mem_fraction_static",
        "Fraction of GPU memory for weights + KV cache, strictly between 0 and 1.",
        "SGLang's (0.88 in the memory check)",
    ),
    Key(
        "server_args",
        "Further SGLang flags as `flag_name: value` (`chunked_prefill_size: 8192`,"
        " `enable_x: true`, lists for multi-value flags).",
    ),
    Key("extra_args", 'Raw SGLang tokens (`["--flag", "value"]`); prefer `server_args`.'),
    Key("env", "Extra environment of the server unit (string values)."),
    Key(
        "disaggregation",
        "`{transfer_backend: mooncake|nixl|ascend|fake, ib_device: mlx5_0, bootstrap_port: 8998}`",
    ),
    Key("router", "Whether the router fronts this group."),
)

ROUTER_KEYS: tuple[Key, ...] = (
    Key("host", "An inventory host, also listed in `sglfleet_routers`."),
    Key("port", "Client-facing port."),
    Key("metrics_port", "Prometheus port."),
    Key("policy", "`cache_aware`, `round_robin`, `random`, `power_of_two`."),
    Key("bind_address", "An IP address."),
    Key("retries", "Retries of a failed request on another worker (≥ 0)."),
    Key("circuit_breaker_failures", "Failures before a worker's circuit opens (≥ 0)."),
    Key("health_check_interval_s", "Seconds between worker health checks (≥ 0)."),
)
