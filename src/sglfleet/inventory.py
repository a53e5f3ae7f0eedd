"""Load an Ansible YAML inventory directory into the typed model, touching no host.

Reads `hosts.yml` (Ansible's YAML inventory format), `group_vars/<group>{.yml,/*.yml}` and
`host_vars/<host>{.yml,/*.yml}`, with the roles' documented defaults underneath. Vault-encrypted
values and variables named like secrets become `Secret` objects that never print.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from sglfleet.errors import InventoryError, Problem
from sglfleet.models import (
    Disaggregation,
    Host,
    Inventory,
    ModelSpec,
    RouterSpec,
    Secret,
    ServingGroupSpec,
)
from sglfleet.paths import project_root

SECRET_SUFFIXES = ("_api_key", "_token", "_password", "_secret")

HOST_VARIABLES = {
    "sglfleet_fabric_address": "fabric_address",
    "sglfleet_fabric_interface": "fabric_interface",
    "sglfleet_rdma_hcas": "rdma_hcas",
    "sglfleet_gpu_count": "gpu_count",
    "sglfleet_gpu_model": "gpu_model",
    "sglfleet_gpu_memory_gb": "gpu_memory_gb",
    "sglfleet_simulated_gpus": "simulated_gpus",
}

CLUSTER_VARIABLES = {
    "sglfleet_cluster_name",
    "sglfleet_sglang_version",
    "sglfleet_engine",
    "sglfleet_models",
    "sglfleet_serving_groups",
    "sglfleet_router",
    "sglfleet_api_key",
    "sglfleet_install_dir",
    "sglfleet_config_dir",
    "sglfleet_models_dir",
    "sglfleet_lab",
}

KNOWN_SGLFLEET_VARIABLES = set(HOST_VARIABLES) | CLUSTER_VARIABLES


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps `!vault` values as opaque secrets."""


def _vault(loader: yaml.SafeLoader, node: yaml.Node) -> Secret:
    return Secret(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor("!vault", _vault)
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InventoryError(
            [Problem(f"{path} is not valid YAML: {exc}", "fix the YAML syntax at the line shown")],
            str(path),
        ) from None


def _hide_secrets(variables: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in variables.items():
        if isinstance(value, str) and key.endswith(SECRET_SUFFIXES):
            out[key] = Secret(value)
        else:
            out[key] = value
    return out


def _vars_files(base: Path, name: str) -> list[Path]:
    files: list[Path] = []
    for suffix in (".yml", ".yaml", ""):
        candidate = base / f"{name}{suffix}"
        if candidate.is_file():
            files.append(candidate)
    folder = base / name
    if folder.is_dir():
        files.extend(sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml")))
    return files


def _load_vars(base: Path, name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in _vars_files(base, name):
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise InventoryError(
                [Problem(f"{path} must hold a mapping of variables", "write `name: value` lines")],
                str(path),
            )
        merged.update(data)
    return _hide_secrets(merged)


def role_defaults(root: Path | None = None) -> dict[str, Any]:
    """Every role's documented defaults, the bottom layer of variable precedence."""
    base = (root or project_root()) / "roles"
    merged: dict[str, Any] = {}
    if base.is_dir():
        for path in sorted(base.glob("*/defaults/main.yml")):
            data = read_yaml(path) or {}
            if isinstance(data, dict):
                merged.update(data)
    return merged


def _walk_groups(
    name: str,
    node: dict[str, Any],
    parents: tuple[str, ...],
    host_groups: dict[str, list[str]],
    host_inline: dict[str, dict[str, Any]],
    group_inline: dict[str, dict[str, Any]],
    group_order: list[str],
) -> None:
    if name not in group_order:
        group_order.append(name)
    if node.get("vars"):
        group_inline.setdefault(name, {}).update(node["vars"])
    lineage = (*parents, name)
    for host, hvars in (node.get("hosts") or {}).items():
        host = str(host)
        groups = host_groups.setdefault(host, [])
        for group in lineage:
            if group not in groups:
                groups.append(group)
        if hvars:
            host_inline.setdefault(host, {}).update(hvars)
    for child, child_node in (node.get("children") or {}).items():
        _walk_groups(
            str(child),
            child_node or {},
            lineage,
            host_groups,
            host_inline,
            group_inline,
            group_order,
        )


def _suggest(name: str, candidates: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f"did you mean `{close[0]}`?" if close else "remove it or check the documented names"


def _known_role_variables(defaults: dict[str, Any]) -> set[str]:
    return set(defaults) | KNOWN_SGLFLEET_VARIABLES


def _check_variable_names(
    where: str | None, variables: dict[str, Any], known: set[str], prefixes: set[str]
) -> list[Problem]:
    problems = []
    for key in variables:
        prefix = next((p for p in prefixes if key.startswith(p + "_")), None)
        if prefix is None or key in known:
            continue
        problems.append(
            Problem(
                f"unknown variable `{key}`",
                _suggest(key, known),
                host=where,
                variable=key,
            )
        )
    return problems


def load_inventory(path: str | Path, root: Path | None = None) -> Inventory:
    """Load and type an inventory directory (or its hosts.yml). Raises InventoryError."""
    inv_path = Path(path).expanduser()
    hosts_file = inv_path if inv_path.is_file() else inv_path / "hosts.yml"
    if not hosts_file.is_file():
        raise InventoryError(
            [
                Problem(
                    f"no inventory at {inv_path}",
                    "pass a directory holding hosts.yml (see `sglfleet init --help`)",
                )
            ],
            str(inv_path),
        )
    base = hosts_file.parent
    raw = read_yaml(hosts_file) or {}
    if not isinstance(raw, dict) or "all" not in raw:
        raise InventoryError(
            [
                Problem(
                    f"{hosts_file} must start with `all:`", "use Ansible's YAML inventory format"
                )
            ],
            str(base),
        )
    host_groups: dict[str, list[str]] = {}
    host_inline: dict[str, dict[str, Any]] = {}
    group_inline: dict[str, dict[str, Any]] = {}
    group_order: list[str] = []
    _walk_groups("all", raw["all"] or {}, (), host_groups, host_inline, group_inline, group_order)

    defaults = role_defaults(root)
    known = _known_role_variables(defaults)
    role_prefixes = {"sglfleet"} | {p.name for p in ((root or project_root()) / "roles").glob("*")}
    problems: list[Problem] = []

    group_vars: dict[str, dict[str, Any]] = {}
    for group in group_order:
        gv = dict(_hide_secrets(group_inline.get(group, {})))
        gv.update(_load_vars(base / "group_vars", group))
        group_vars[group] = gv
        problems += _check_variable_names(None, gv, known, role_prefixes)

    global_vars = {**defaults, **group_vars.get("all", {})}
    hosts: dict[str, Host] = {}
    host_merged: dict[str, dict[str, Any]] = {}
    for host, groups in host_groups.items():
        merged = dict(defaults)
        for group in groups:
            merged.update(group_vars.get(group, {}))
        own = {**_hide_secrets(host_inline.get(host, {})), **_load_vars(base / "host_vars", host)}
        problems += _check_variable_names(host, own, known, role_prefixes)
        merged.update(own)
        host_merged[host] = merged
        fields: dict[str, Any] = {
            attr: merged[var] for var, attr in HOST_VARIABLES.items() if var in merged
        }
        if "rdma_hcas" in fields:
            fields["rdma_hcas"] = tuple(fields["rdma_hcas"] or ())
        try:
            hosts[host] = Host(
                name=host,
                ansible_host=str(merged["ansible_host"]) if "ansible_host" in merged else None,
                groups=tuple(groups),
                vars=merged,
                **fields,
            )
        except ValueError as exc:
            problems += _pydantic_problems(exc, host, "sglfleet_")

    if problems:
        raise InventoryError(problems, str(base))
    return _cluster(base, hosts, global_vars)


def _pydantic_problems(exc: Exception, host: str | None, prefix: str) -> list[Problem]:
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [Problem(str(exc), "check the value's type", host=host)]
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        variable = f"{prefix}{loc}"
        if err["type"] == "extra_forbidden":
            problems.append(
                Problem(f"unknown key `{loc}`", "remove it or check the docs", host, variable)
            )
        else:
            problems.append(
                Problem(f"{err['msg']} (got {err.get('input')!r})", "fix the value", host, variable)
            )
    return problems


def _cluster(base: Path, hosts: dict[str, Host], gv: dict[str, Any]) -> Inventory:
    problems: list[Problem] = []
    models: dict[str, ModelSpec] = {}
    raw_models = gv.get("sglfleet_models") or {}
    if not isinstance(raw_models, dict):
        problems.append(
            Problem(
                "sglfleet_models must map a model name to its settings",
                "write `sglfleet_models: {NAME: {repo_id: ..., weights_gb: ...}}`",
                variable="sglfleet_models",
            )
        )
        raw_models = {}
    for name, spec in raw_models.items():
        try:
            models[name] = ModelSpec(name=name, **(spec or {}))
        except (ValueError, TypeError) as exc:
            problems += _pydantic_problems(exc, None, f"sglfleet_models.{name}.")

    groups: list[ServingGroupSpec] = []
    raw_groups = gv.get("sglfleet_serving_groups") or []
    if not isinstance(raw_groups, list):
        problems.append(
            Problem(
                "sglfleet_serving_groups must be a list",
                "write `sglfleet_serving_groups: [{name: ..., model: ..., hosts: [...]}]`",
                variable="sglfleet_serving_groups",
            )
        )
        raw_groups = []
    for index, entry in enumerate(raw_groups):
        label = entry.get("name", index) if isinstance(entry, dict) else index
        try:
            data = dict(entry)
            if data.get("disaggregation") is not None:
                data["disaggregation"] = Disaggregation(**data["disaggregation"])
            data["hosts"] = tuple(str(h) for h in data.get("hosts") or ())
            data["extra_args"] = tuple(str(a) for a in data.get("extra_args") or ())
            groups.append(ServingGroupSpec(**data))
        except (ValueError, TypeError) as exc:
            problems += _pydantic_problems(exc, None, f"sglfleet_serving_groups[{label}].")

    router: RouterSpec | None = None
    if gv.get("sglfleet_router"):
        try:
            router = RouterSpec(**gv["sglfleet_router"])
        except (ValueError, TypeError) as exc:
            problems += _pydantic_problems(exc, None, "sglfleet_router.")

    api_key = gv.get("sglfleet_api_key")
    if isinstance(api_key, str):
        api_key = Secret(api_key)
    if problems:
        raise InventoryError(problems, str(base))
    return Inventory(
        path=str(base),
        cluster_name=str(gv.get("sglfleet_cluster_name") or base.name),
        hosts=hosts,
        models=models,
        serving_groups=tuple(groups),
        router=router,
        sglang_version=str(gv.get("sglfleet_sglang_version", "0.5.23")),
        engine=gv.get("sglfleet_engine", "sglang"),
        install_dir=str(gv.get("sglfleet_install_dir", "/opt/sglfleet")),
        config_dir=str(gv.get("sglfleet_config_dir", "/etc/sglfleet")),
        models_dir=str(gv.get("sglfleet_models_dir", "/var/lib/sglfleet/models")),
        api_key=api_key,
        global_vars=gv,
    )
