"""What must agree across hosts and groups for SGLang and the router to start at all.

- The model splits as SGLang splits it: attention heads over tp (or tp / attn_dp), KV heads split
  or replicated, routed experts over ep; an FP8 checkpoint needs FP8 GPUs unless the group states
  a quantization; a context length above the model's maximum needs SGLang's override. The
  architecture comes from the model's config.json where the controller can read it, else from a
  table of known models (`model_arch`); the problem says which.
- The members of a multi-node engine instance: SGLang puts tp x dp / nnodes GPUs on every member,
  so each has that many GPUs of one model.
- Prefill/decode pairs: one model and revision, one KV transfer backend, IB devices on all or none.
- One gateway, one namespace: groups behind the router that answer to one served name serve the
  same weights (two models under one name would be mixed at random).
- Every port sglfleet opens on a host (exporters, Prometheus, Grafana, Open WebUI, the router's
  internal port) joins the collision check with the serving ports (`port_claims`).

Each problem names the host or the group, the variable as written, and the fix.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from collections.abc import Iterator
from functools import cache
from typing import Any

import yaml

from sglfleet.cluster import group_tp, replicas
from sglfleet.errors import Problem
from sglfleet.hardware import supports_fp8
from sglfleet.model_arch import architecture
from sglfleet.models import Inventory, ModelSpec
from sglfleet.paths import project_root
from sglfleet_sglang.catalog import human_readable_int

GPU_GROUP = "sglfleet_gpu_nodes"
ROUTER_GROUP = "sglfleet_routers"
MONITORING_GROUP = "sglfleet_monitoring"
GRAFANA_PORT = 3000  # Grafana's own default; the monitoring role does not change it


@cache
def role_default(role: str, name: str) -> Any:
    """A role's default for one of its variables (roles/<role>/defaults/main.yml)."""
    path = project_root() / "roles" / role / "defaults" / "main.yml"
    defaults = yaml.safe_load(path.read_text()) or {}
    return defaults[name]


def _setting(inv: Inventory, host: str, role: str, name: str) -> Any:
    return inv.hosts[host].vars.get(name, role_default(role, name))


def group_shape_problems(inv: Inventory) -> list[Problem]:
    """Members of one multi-node engine instance: the same number and model of GPUs."""
    problems: list[Problem] = []
    for replica in replicas(inv):
        members = [h for h in replica.hosts if h in inv.hosts]
        if len(members) < 2 or len(members) != len(replica.hosts):
            continue
        rank0 = inv.hosts[members[0]]
        for name in members[1:]:
            host = inv.hosts[name]
            if host.gpu_count != rank0.gpu_count:
                problems.append(
                    Problem(
                        f"{replica.name}: rank 0 ({rank0.name}) has {rank0.gpu_count} GPUs, this "
                        f"member {host.gpu_count}; SGLang places tp x dp / nnodes GPUs on every "
                        "member",
                        "give every member of a multi-node group the same sglfleet_gpu_count "
                        "(serve uneven nodes in separate groups)",
                        host=name,
                        variable="sglfleet_gpu_count",
                    )
                )
            if (host.gpu_model or "") != (rank0.gpu_model or ""):
                problems.append(
                    Problem(
                        f"{replica.name}: rank 0 ({rank0.name}) has {rank0.gpu_model} GPUs, this "
                        f"member {host.gpu_model}",
                        "a multi-node group runs on one GPU model: fix sglfleet_gpu_model or "
                        "move the host to another group",
                        host=name,
                        variable="sglfleet_gpu_model",
                    )
                )
    return problems


LONGER_CONTEXT_ENV = "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"


def architecture_problems(inv: Inventory) -> list[Problem]:
    """The model must split over the group as SGLang splits it, and run on its GPUs."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for replica in replicas(inv):
        spec = replica.spec
        model = inv.models.get(spec.model)
        hosts = [h for h in replica.hosts if h in inv.hosts]
        if spec.name in seen or model is None or not hosts:
            continue
        seen.add(spec.name)
        arch = architecture(model)
        if arch is None:
            continue
        var = f"sglfleet_serving_groups[{spec.name}]"
        tp = group_tp(inv, replica)
        attn_dp = spec.attn_dp or 1
        per_attention = tp // attn_dp if attn_dp and tp % attn_dp == 0 else tp
        where = f"({arch.source})"
        if per_attention > 0 and arch.attention_heads % per_attention:
            fits = [d for d in (1, 2, 4, 8, 16, 32) if arch.attention_heads % d == 0]
            problems.append(
                Problem(
                    f"group {spec.name}: {spec.model} has {arch.attention_heads} attention heads, "
                    f"which tp={tp}"
                    + (f" / attn_dp={attn_dp}" if spec.attn_dp else "")
                    + f" = {per_attention} does not divide {where}",
                    f"split attention over a divisor of {arch.attention_heads}: tp (or tp / "
                    f"attn_dp) in {fits}",
                    variable=f"{var}.tp",
                )
            )
        elif per_attention > 0 and arch.kv_heads % per_attention and per_attention % arch.kv_heads:
            problems.append(
                Problem(
                    f"group {spec.name}: {spec.model} has {arch.kv_heads} KV heads; SGLang splits "
                    f"or replicates them over {per_attention} ranks only when one divides the "
                    f"other {where}",
                    f"choose tp (or tp / attn_dp) that divides {arch.kv_heads} or is a multiple "
                    "of it",
                    variable=f"{var}.tp",
                )
            )
        pp = spec.server_args.get("pp_size") or spec.server_args.get("pipeline_parallel_size")
        if isinstance(pp, int) and pp > 1 and arch.layers % pp:
            problems.append(
                Problem(
                    f"group {spec.name}: {spec.model} has {arch.layers} layers, which pp_size={pp} "
                    f"does not divide {where}",
                    f"set pp_size to a divisor of {arch.layers}",
                    variable=f"{var}.server_args.pp_size",
                )
            )
        if spec.ep and arch.experts and arch.experts % spec.ep:
            problems.append(
                Problem(
                    f"group {spec.name}: {spec.model} has {arch.experts} routed experts, which "
                    f"ep={spec.ep} does not divide {where}",
                    f"set ep to a divisor of {arch.experts} (e.g. 8 or 16)",
                    variable=f"{var}.ep",
                )
            )
        gpu_model = inv.hosts[hosts[0]].gpu_model
        if (
            arch.fp8_checkpoint
            and supports_fp8(gpu_model) is False
            and "quantization" not in spec.server_args
        ):
            problems.append(
                Problem(
                    f"group {spec.name}: {spec.model} is an FP8 checkpoint and {gpu_model} has "
                    f"no FP8 tensor cores (pre-Hopper) {where}",
                    "serve a BF16 (or INT8) checkpoint of the model on these GPUs and state its "
                    "method in server_args.quantization, or use Hopper, Ada or Blackwell GPUs",
                    host=hosts[0],
                    variable="sglfleet_gpu_model",
                )
            )
        raw = spec.server_args.get("context_length")
        try:
            context = human_readable_int(str(raw)) if raw is not None else None
        except (ValueError, ArgumentTypeError):
            context = None  # the flag check reports a value that is not a number
        allowed = str(spec.env.get(LONGER_CONTEXT_ENV, "")).lower() in ("1", "true")
        if context is not None and context > arch.max_context and not allowed:
            problems.append(
                Problem(
                    f"group {spec.name}: context_length {context} is above {spec.model}'s "
                    f"maximum of {arch.max_context} {where}; SGLang refuses it at start",
                    f"set context_length to at most {arch.max_context}, or (knowing the model "
                    f"degrades past it) set env {LONGER_CONTEXT_ENV}: '1' on the group",
                    variable=f"{var}.server_args.context_length",
                )
            )
    return problems


def router_version_problems(inv: Inventory) -> list[Problem]:
    """The router's flags are written for the release the role pins; another is refused."""
    pinned = str(role_default("sglang_router", "sglang_router_version"))
    problems: list[Problem] = []
    for name, host in inv.hosts.items():
        wanted = host.vars.get("sglang_router_version")
        if wanted is None or str(wanted) == pinned or ROUTER_GROUP not in host.groups:
            continue
        problems.append(
            Problem(
                f"sglang_router_version {wanted} is not the release sglfleet writes the router's "
                f"flags for ({pinned}); its flags and metrics may differ",
                f"remove sglang_router_version (sglfleet pins {pinned}), or add the release to "
                "the sglang_router role and its tests first",
                host=name,
                variable="sglang_router_version",
            )
        )
    return problems


def _weights(model: ModelSpec) -> tuple[str, ...]:
    """What identifies a model's weights: hub repository and revision, or the mirrored folder."""
    if model.hub in ("huggingface", "modelscope"):
        return (model.hub, model.repo_id or "", model.revision)
    return (model.hub, model.mirror_path or "", model.revision)


def pd_problems(inv: Inventory) -> list[Problem]:
    """Prefill and decode groups pair only when they serve one model the same way."""
    problems: list[Problem] = []
    pd = [s for s in inv.serving_groups if s.mode != "regular" and s.disaggregation is not None]
    if not any(s.mode == "prefill" for s in pd) or not any(s.mode == "decode" for s in pd):
        return problems
    first = pd[0]
    first_model = inv.models.get(first.model)
    for spec in pd[1:]:
        var = f"sglfleet_serving_groups[{spec.name}]"
        model = inv.models.get(spec.model)
        if (
            model is not None
            and first_model is not None
            and _weights(model) != _weights(first_model)
        ):
            problems.append(
                Problem(
                    f"{spec.mode} group {spec.name} serves {spec.model} "
                    f"({model.repo_id or model.mirror_path}@{model.revision[:12]}), "
                    f"{first.mode} group {first.name} serves {first.model} "
                    f"({first_model.repo_id or first_model.mirror_path}"
                    f"@{first_model.revision[:12]}); a KV cache moves only between the same "
                    "weights",
                    f"serve one model (and revision) in every prefill and decode group: "
                    f"set {var}.model to {first.model}",
                    variable=f"{var}.model",
                )
            )
        if spec.disaggregation is None or first.disaggregation is None:
            continue
        if spec.disaggregation.transfer_backend != first.disaggregation.transfer_backend:
            problems.append(
                Problem(
                    f"{spec.mode} group {spec.name} transfers KV with "
                    f"{spec.disaggregation.transfer_backend}, {first.mode} group {first.name} "
                    f"with {first.disaggregation.transfer_backend}",
                    f"use one transfer_backend in every PD group: set "
                    f"{var}.disaggregation.transfer_backend to "
                    f"{first.disaggregation.transfer_backend}",
                    variable=f"{var}.disaggregation.transfer_backend",
                )
            )
        if bool(spec.disaggregation.ib_device) != bool(first.disaggregation.ib_device):
            problems.append(
                Problem(
                    f"{spec.mode} group {spec.name} "
                    + ("names" if spec.disaggregation.ib_device else "does not name")
                    + f" an IB device for the KV transfer, {first.mode} group {first.name} "
                    + ("does" if first.disaggregation.ib_device else "does not"),
                    f"set {var}.disaggregation.ib_device in every PD group (the HCA on each side), "
                    "or in none (the transfer engine picks)",
                    variable=f"{var}.disaggregation.ib_device",
                )
            )
    return problems


def namespace_problems(inv: Inventory) -> list[Problem]:
    """Behind one router a served name stands for one set of weights."""
    problems: list[Problem] = []
    if inv.router is None:
        return problems
    owner: dict[str, tuple[str, ModelSpec]] = {}
    for spec in inv.serving_groups:
        model = inv.models.get(spec.model)
        if not spec.router or model is None:
            continue
        name = model.served_name or spec.model
        if name not in owner:
            owner[name] = (spec.name, model)
            continue
        first_group, first_model = owner[name]
        if _weights(first_model) != _weights(model):
            problems.append(
                Problem(
                    f"groups {first_group} ({first_model.name}) and {spec.name} ({model.name}) "
                    f"answer to the served name `{name}` behind one router with different "
                    "weights; requests would reach either at random",
                    f"give sglfleet_models.{model.name} its own served_name, or serve "
                    f"{first_model.name} in {spec.name} (then they are replicas)",
                    variable=f"sglfleet_models.{model.name}.served_name",
                )
            )
    return problems


def _monitoring_hosts(inv: Inventory) -> list[str]:
    hosts = [n for n, h in inv.hosts.items() if MONITORING_GROUP in h.groups]
    routers = [n for n, h in inv.hosts.items() if ROUTER_GROUP in h.groups]
    return hosts or routers[:1]


def port_claims(inv: Inventory) -> Iterator[tuple[str, int, str, str]]:
    """(host, port, what, variable) of every port sglfleet's roles open besides serving ports."""
    for name, host in inv.hosts.items():
        if _setting(inv, name, "monitoring", "monitoring_node_exporter_enabled"):
            port = int(_setting(inv, name, "monitoring", "monitoring_node_exporter_port"))
            yield name, port, "node exporter", "monitoring_node_exporter_port"
        gpu = GPU_GROUP in host.groups and host.gpu_count > 0 and not host.simulated_gpus
        if gpu and _setting(inv, name, "dcgm", "dcgm_exporter_enabled"):
            port = int(_setting(inv, name, "dcgm", "dcgm_exporter_port"))
            yield name, port, "DCGM exporter", "dcgm_exporter_port"
    for name in _monitoring_hosts(inv):
        port = int(_setting(inv, name, "monitoring", "monitoring_prometheus_port"))
        yield name, port, "Prometheus", "monitoring_prometheus_port"
        if _setting(inv, name, "monitoring", "monitoring_grafana_enabled"):
            yield name, GRAFANA_PORT, "Grafana", "monitoring_grafana_enabled"
    if inv.router is not None and inv.router.host in inv.hosts:
        name = inv.router.host
        port = int(_setting(inv, name, "sglang_router", "sglang_router_internal_port"))
        yield name, port, "router (behind its API-key gate)", "sglang_router_internal_port"
        routers = [n for n, h in inv.hosts.items() if ROUTER_GROUP in h.groups]
        for web in routers[:1]:
            if _setting(inv, web, "open_webui", "open_webui_enabled"):
                port = int(_setting(inv, web, "open_webui", "open_webui_port"))
                yield web, port, "Open WebUI", "open_webui_port"
