"""Load an Ansible YAML inventory directory into the typed model, touching no host.

Reads `hosts.yml` (Ansible's YAML inventory format), `group_vars/` and `host_vars/` the way
ansible-core's `yaml` inventory and `host_group_vars` vars plugins do, and layers them in Ansible's
order (see `load_inventory`), with the roles' documented defaults underneath and `-e` extra vars on
top. Vault-encrypted values and variables named like secrets become `Secret` objects that never
print. tests/unit/sglfleet/test_inventory_parity.py keeps every variable equal to
`ansible-inventory --list`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sglfleet import schema
from sglfleet.checks import partial
from sglfleet.errors import InventoryError, Problem, readable_order
from sglfleet.models import (
    Host,
    Inventory,
    ModelSpec,
    RouterSpec,
    Secret,
    ServingGroupSpec,
)
from sglfleet.paths import project_root

SECRET_SUFFIXES = ("_api_key", "_token", "_password", "_secret")

# The inventory's variables are declared once, in sglfleet.schema.
# sglfleet_* host variables typed into Host fields: variable -> field.
HOST_VARIABLES = {
    v.name: v.field
    for v in schema.HOST_VARIABLES
    if v.field is not None and v.name.startswith("sglfleet_")
}

# Host variables read from `Host.vars` rather than typed fields.
HOST_EXTRA_VARIABLES = {
    v.name for v in schema.HOST_VARIABLES if v.field is None and v.name.startswith("sglfleet_")
}

CLUSTER_VARIABLES = {v.name for v in schema.CLUSTER_VARIABLES}

KNOWN_SGLFLEET_VARIABLES = set(HOST_VARIABLES) | HOST_EXTRA_VARIABLES | CLUSTER_VARIABLES


# libyaml's parser (the constructor stays Python) reads a 1,000-node inventory ~5x faster.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that keeps `!vault` values as opaque secrets and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Ansible keeps the last of two equal keys; that silently drops settings, so refuse it.
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key `{key}` (first at line {first_line[key]})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _vault(loader: yaml.SafeLoader, node: yaml.Node) -> Secret:
    return Secret(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor("!vault", _vault)
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _source_line(path: Path, line: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[line].strip() if 0 <= line < len(lines) else ""


def yaml_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    """One readable problem for a YAML error: file, line, column, what, and the line itself."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return Problem(f"{path} is not valid YAML: {what}", "fix the YAML syntax")
    line = mark.line + 1
    text = _source_line(path, mark.line)
    context = getattr(exc, "context", None)
    detail = f"{what} ({context})" if context else what
    shown = f": `{text}`" if text else ""
    if "duplicate key" in what:
        hint = f"keep one of the two entries (line {line} and the first one)"
    else:
        hint = (
            f"fix the YAML at line {line}: check indentation, a missing `:`,"
            " or an unclosed bracket or quote"
        )
    return Problem(f"{path} line {line}, column {mark.column + 1}: {detail}{shown}", hint)


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InventoryError([yaml_problem(path, exc)], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(
            [Problem(f"cannot read {path}: {exc}", "make the file readable UTF-8 text")],
            str(path),
        ) from None


@dataclass
class _Collected:
    """Problems found while loading, and what could not be typed (so later checks skip it)."""

    problems: list[Problem] = field(default_factory=list)
    failed_hosts: set[str] = field(default_factory=set)
    failed_models: set[str] = field(default_factory=set)
    failed_groups: set[str] = field(default_factory=set)
    router_failed: bool = False


def _hide_secrets(variables: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in variables.items():
        if isinstance(value, str) and key.endswith(SECRET_SUFFIXES):
            out[key] = Secret(value)
        else:
            out[key] = value
    return out


# Ansible's YAML_FILENAME_EXTENSIONS; a file without an extension is read too.
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


def _vars_dir_files(folder: Path) -> list[Path]:
    """Ansible's order inside a vars folder: sorted names, folders recursed in place."""
    files: list[Path] = []
    for name in sorted(entry.name for entry in folder.iterdir()):
        # Hidden files and editor backups are skipped, as Ansible does.
        if name.startswith(".") or name.endswith("~"):
            continue
        path = folder / name
        extension = Path(name).suffix
        if path.is_dir() and not extension:
            files.extend(_vars_dir_files(path))
        elif path.is_file() and extension in _VARS_EXTENSIONS:
            files.append(path)
    return files


def _vars_files(base: Path, name: str) -> list[Path]:
    """The first of `name` (file or folder), `name.yml`, `name.yaml`, `name.json`, as Ansible."""
    for suffix in _VARS_EXTENSIONS:
        candidate = base / f"{name}{suffix}"
        if candidate.is_dir():
            return _vars_dir_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _load_vars(base: Path, name: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """Merge a group's or host's vars files; with `problems`, collect errors instead of raising."""
    merged: dict[str, Any] = {}
    found: list[Problem] = []
    for path in _vars_files(base, name):
        try:
            data = read_yaml(path) or {}
        except InventoryError as exc:
            found += exc.problems
            continue
        if isinstance(data, str) and data.startswith("$ANSIBLE_VAULT"):
            found.append(
                Problem(
                    f"{path} is vault-encrypted as a whole file, which sglfleet cannot read",
                    "decrypt it and encrypt single values with `ansible-vault encrypt_string`",
                )
            )
            continue
        if not isinstance(data, dict):
            found.append(
                Problem(f"{path} must hold a mapping of variables", "write `name: value` lines")
            )
            continue
        merged.update({str(k): v for k, v in data.items()})
    if found and problems is None:
        raise InventoryError(found, str(base))
    if problems is not None:
        problems += found
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


_GROUP_KEYS = ("hosts", "children", "vars")
_PRIORITY = "ansible_group_priority"


@dataclass
class _Parsed:
    """What hosts.yml declares, recorded in the order Ansible's `yaml` inventory plugin reads it."""

    group_order: list[str] = field(default_factory=list)
    parents: dict[str, list[str]] = field(default_factory=dict)
    group_inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)
    host_direct: dict[str, list[str]] = field(default_factory=dict)
    host_inline: dict[str, dict[str, Any]] = field(default_factory=dict)


def _walk_groups(
    name: str,
    node: Any,
    parents: tuple[str, ...],
    parsed: _Parsed,
    problems: list[Problem],
) -> None:
    where = ".".join((*parents, name))
    if name not in parsed.group_order:
        parsed.group_order.append(name)
    parsed.parents.setdefault(name, [])
    if node is None:
        return
    if not isinstance(node, dict):
        problems.append(
            Problem(
                f"hosts.yml: group {name} must be a mapping with hosts:, children: or vars:,"
                f" got {type(node).__name__}",
                f"write `{name}:` followed by indented `hosts:` (one `host:` per line)",
                variable=where,
            )
        )
        return
    for key in node:
        if key not in _GROUP_KEYS:
            close = difflib.get_close_matches(str(key), _GROUP_KEYS, n=1, cutoff=0.6)
            problems.append(
                Problem(
                    f"hosts.yml: group {name} has key `{key}`; a group holds only"
                    " hosts:, children: and vars:",
                    f"did you mean `{close[0]}:`?" if close else "move it under `vars:`",
                    variable=f"{where}.{key}",
                )
            )
    for key in _GROUP_KEYS:
        value = node.get(key)
        if value is not None and not isinstance(value, dict):
            example = "`hosts:` then one `name:` per line" if key != "vars" else "`name: value`"
            problems.append(
                Problem(
                    f"hosts.yml: {where}.{key} must be a mapping, got {type(value).__name__}",
                    f"write {example} (Ansible's YAML inventory format), not a list",
                    variable=f"{where}.{key}",
                )
            )
    lineage = (*parents, name)
    # Ansible reads a group's keys in the order they are written: with `hosts:` after
    # `children:`, a host's inline vars under the parent group win over those under the child.
    for key, value in node.items():
        if not isinstance(value, dict):
            continue
        if key == "vars":
            _group_inline_vars(name, where, value, parsed, problems)
        elif key == "children":
            for child, child_node in value.items():
                child = str(child)
                if child in lineage:
                    problems.append(
                        Problem(
                            f"hosts.yml: group {child} is its own ancestor ({where}.{child})",
                            f"remove `{child}:` from the children of {name}",
                            variable=f"{where}.children.{child}",
                        )
                    )
                    continue
                _walk_groups(child, child_node, lineage, parsed, problems)
                if name not in parsed.parents[child]:
                    parsed.parents[child].append(name)
        elif key == "hosts":
            for host, hvars in value.items():
                host = str(host)
                direct = parsed.host_direct.setdefault(host, [])
                if name not in direct:
                    direct.append(name)
                if isinstance(hvars, dict):
                    parsed.host_inline.setdefault(host, {}).update(
                        {str(k): v for k, v in hvars.items()}
                    )
                elif hvars is not None:
                    problems.append(
                        Problem(
                            f"hosts.yml: host {host} must hold a mapping of variables,"
                            f" got {hvars!r}",
                            f"write `{host}:` then indented `name: value` lines (or nothing)",
                            host=host,
                            variable=f"{where}.hosts.{host}",
                        )
                    )


def _group_inline_vars(
    name: str, where: str, variables: dict[Any, Any], parsed: _Parsed, problems: list[Problem]
) -> None:
    inline = parsed.group_inline.setdefault(name, {})
    for raw_key, value in variables.items():
        key = str(raw_key)
        if key != _PRIORITY:
            inline[key] = value
            continue
        # Ansible turns an inline priority into the group's sort key, not a variable.
        try:
            parsed.priority[name] = int(value)
        except (TypeError, ValueError):
            problems.append(
                Problem(
                    f"hosts.yml: {where}.vars.{_PRIORITY} is {value!r}, not a whole number",
                    f"write `{_PRIORITY}: 10` (higher wins among groups of the same depth)",
                    variable=f"{where}.vars.{_PRIORITY}",
                )
            )


def _group_depths(parsed: _Parsed, problems: list[Problem]) -> dict[str, int]:
    """Ansible's group depth: the longest chain of parents up to `all` (which has depth 0)."""
    depths: dict[str, int] = {"all": 0}
    visiting: set[str] = set()

    def depth(group: str) -> int:
        if group in depths:
            return depths[group]
        if group in visiting:
            problems.append(
                Problem(
                    f"hosts.yml: group {group} is its own ancestor",
                    f"remove one of the `children:` entries that nest {group} in itself",
                    variable=group,
                )
            )
            return 0
        visiting.add(group)
        # A group nested nowhere hangs under `all`, as Ansible reconciles it.
        found = max((depth(parent) + 1 for parent in parsed.parents.get(group, [])), default=1)
        visiting.discard(group)
        depths[group] = found
        return found

    for group in parsed.group_order:
        depth(group)
    return depths


def _host_groups(host: str, parsed: _Parsed, depths: dict[str, int]) -> tuple[str, ...]:
    """`all`, then the host's groups with their ancestors in Ansible's order.

    Ansible's `sort_groups` orders by depth, then `ansible_group_priority` (inline only), then
    name; later groups' variables win.
    """
    seen: set[str] = set()
    pending = list(parsed.host_direct.get(host, []))
    while pending:
        group = pending.pop()
        if group not in seen:
            seen.add(group)
            pending.extend(parsed.parents.get(group, []))
    seen.discard("all")
    if not seen:
        seen.add("ungrouped")
    ordered = sorted(seen, key=lambda g: (depths.get(g, 1), parsed.priority.get(g, 1), g))
    return ("all", *ordered)


def _suggest(name: str, candidates: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f"did you mean `{close[0]}`?" if close else "remove it or check the documented names"


def _known_role_variables(defaults: dict[str, Any]) -> set[str]:
    return set(defaults) | KNOWN_SGLFLEET_VARIABLES


def _check_variable_names(
    where: str | None,
    variables: dict[str, Any],
    known: set[str],
    prefixes: set[str],
    source: str = "",
) -> list[Problem]:
    problems = []
    for key in variables:
        prefix = next((p for p in prefixes if key.startswith(p + "_")), None)
        if prefix is None or key in known:
            continue
        problems.append(
            Problem(
                f"unknown variable `{key}`{source}",
                _suggest(key, known),
                host=where,
                variable=key,
            )
        )
    return problems


def load_inventory(
    path: str | Path,
    root: Path | None = None,
    *,
    extra_vars: Mapping[str, Any] | None = None,
) -> Inventory:
    """Load and type an inventory directory (or its hosts.yml). Raises InventoryError.

    A host's variables are layered as Ansible does (later wins, whole top-level values):
    role defaults; inline `vars:` of `all`, then of the host's other groups in Ansible's group
    order (depth, inline `ansible_group_priority`, name); `group_vars/all`, then `group_vars/`
    of those groups in the same order; the host's inline vars; `host_vars/`; `extra_vars`
    (Ansible's `-e`). The cluster's variables are the same layers for `all` alone.

    Every problem is collected before raising: YAML errors of every file, unknown variables,
    wrong types, and the cross-reference checks on whatever could be typed.
    """
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
        found = ", ".join(f"`{k}:`" for k in raw) if isinstance(raw, dict) else "no mapping"
        raise InventoryError(
            [
                Problem(
                    f"{hosts_file} must start with `all:` (found {found})",
                    "use Ansible's YAML inventory format: `all:` then indented `children:`"
                    " holding sglfleet_gpu_nodes and sglfleet_routers",
                    variable="all",
                )
            ],
            str(base),
        )
    collected = _Collected()
    problems = collected.problems
    parsed = _Parsed()
    # Ansible reads every top-level key as a group; those nested nowhere hang under `all`.
    for name, node in raw.items():
        _walk_groups(str(name), node, (), parsed, problems)
    depths = _group_depths(parsed, problems)

    defaults = role_defaults(root)
    known = _known_role_variables(defaults)
    role_prefixes = {"sglfleet"} | {p.name for p in ((root or project_root()) / "roles").glob("*")}

    group_inline: dict[str, dict[str, Any]] = {}
    group_files: dict[str, dict[str, Any]] = {}
    for group in [*parsed.group_order, "ungrouped"]:
        group_inline[group] = _hide_secrets(parsed.group_inline.get(group, {}))
        group_files[group] = _load_vars(base / "group_vars", group, problems)
        source = f" (group_vars of {group})"
        both = {**group_inline[group], **group_files[group]}
        problems += _check_variable_names(None, both, known, role_prefixes, source)
    extra = _hide_secrets({str(k): v for k, v in (extra_vars or {}).items()})

    global_vars = {**defaults, **group_inline["all"], **group_files["all"], **extra}
    hosts: dict[str, Host] = {}
    for host in parsed.host_direct:
        groups = _host_groups(host, parsed, depths)
        merged = dict(defaults)
        # Ansible puts every inventory file's group vars below every group_vars/ file.
        for layer in (group_inline, group_files):
            for group in groups:
                merged.update(layer.get(group, {}))
        own_inline = _hide_secrets(parsed.host_inline.get(host, {}))
        own_files = _load_vars(base / "host_vars", host, problems)
        problems += _check_variable_names(host, {**own_inline, **own_files}, known, role_prefixes)
        merged.update(own_inline)
        merged.update(own_files)
        merged.update(extra)
        fields: dict[str, Any] = {
            attr: merged[var] for var, attr in HOST_VARIABLES.items() if var in merged
        }
        hcas = fields.get("rdma_hcas")
        if isinstance(hcas, str):
            problems.append(
                Problem(
                    f"sglfleet_rdma_hcas is the string {hcas!r}, not a list",
                    f"write a list: `sglfleet_rdma_hcas: [{hcas}]`",
                    host=host,
                    variable="sglfleet_rdma_hcas",
                )
            )
            collected.failed_hosts.add(host)
            fields["rdma_hcas"] = ()
        elif isinstance(hcas, list | tuple) or hcas is None:
            fields["rdma_hcas"] = tuple(hcas or ())
        try:
            typed = Host(
                name=host,
                ansible_host=str(merged["ansible_host"]) if "ansible_host" in merged else None,
                groups=groups,
                vars=merged,
                **fields,
            )
            if host not in collected.failed_hosts:
                hosts[host] = typed
        except ValueError as exc:
            problems += _pydantic_problems(exc, host, "sglfleet_", Host)
            collected.failed_hosts.add(host)

    inventory = _cluster(base, hosts, global_vars, collected)
    if problems:
        if inventory is not None:
            problems += partial(
                inventory,
                failed_hosts=collected.failed_hosts,
                failed_models=collected.failed_models,
                failed_groups=collected.failed_groups,
                router_failed=collected.router_failed,
            )
        raise InventoryError(readable_order(problems), str(base))
    assert inventory is not None
    return inventory


_TYPE_HINTS = {
    "int_parsing": "write a whole number without quotes, e.g. `{field}: 8`",
    "int_type": "write a whole number without quotes, e.g. `{field}: 8`",
    "int_from_float": "write a whole number, e.g. `{field}: 8`",
    "float_parsing": "write a number without quotes, e.g. `{field}: 0.88`",
    "float_type": "write a number without quotes, e.g. `{field}: 0.88`",
    "bool_parsing": "write `true` or `false`",
    "bool_type": "write `true` or `false`",
    "string_type": "write text; quote it if YAML reads it as a number, a date or a list",
    "dict_type": "write a mapping of `key: value` lines",
    "model_type": "write a mapping of `key: value` lines",
    "tuple_type": "write a list, e.g. `[a, b]`",
    "list_type": "write a list, e.g. `[a, b]`",
}


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_problems(
    exc: Exception, host: str | None, prefix: str, model: type[Any] | None = None
) -> list[Problem]:
    if not isinstance(exc, ValidationError):
        return [Problem(str(exc), "check the value's type", host=host)]
    fields: set[str] = set()
    if isinstance(model, type) and issubclass(model, BaseModel):
        fields = set(model.model_fields) - {"name", "groups", "vars", "path"}
    problems = []
    for err in exc.errors():
        loc = _location(err["loc"])
        field_name = str(err["loc"][-1]) if err["loc"] else loc
        variable = f"{prefix}{loc}"
        kind = err["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(field_name, sorted(fields), n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else "remove it (see docs/inventory.md)"
            problems.append(Problem(f"unknown key `{loc}`", hint, host, variable))
        elif kind == "missing":
            problems.append(
                Problem(f"`{loc}` is required", f"add `{field_name}: ...`", host, variable)
            )
        elif kind == "literal_error":
            expected = (err.get("ctx") or {}).get("expected", "")
            problems.append(
                Problem(
                    f"{err['input']!r} is not allowed",
                    f"use one of {expected}",
                    host,
                    variable,
                )
            )
        else:
            hint = _TYPE_HINTS.get(kind, "fix the value (see docs/inventory.md)")
            problems.append(
                Problem(
                    f"{err['msg']} (got {err.get('input')!r})",
                    hint.format(field=field_name),
                    host,
                    variable,
                )
            )
    return problems


def _cluster(
    base: Path, hosts: dict[str, Host], gv: dict[str, Any], collected: _Collected | None = None
) -> Inventory | None:
    """Type the cluster-wide variables. Returns the (possibly partial) inventory, or None."""
    collected = collected or _Collected()
    problems = collected.problems
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
    for raw_name, spec in raw_models.items():
        name = str(raw_name)
        if not isinstance(spec, dict):
            problems.append(
                Problem(
                    f"model {name} must be a mapping of its settings, got {spec!r}",
                    f"write `{name}: {{hub: huggingface, repo_id: ORG/NAME, weights_gb: N}}`",
                    variable=f"sglfleet_models.{name}",
                )
            )
            collected.failed_models.add(name)
            continue
        try:
            models[name] = ModelSpec(name=name, **spec)
        except (ValueError, TypeError) as exc:
            problems += _pydantic_problems(exc, None, f"sglfleet_models.{name}.", ModelSpec)
            collected.failed_models.add(name)

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
        if not isinstance(entry, dict):
            problems.append(
                Problem(
                    f"serving group #{index} must be a mapping, got {entry!r}",
                    "write `- name: NAME` then indented `model:` and `hosts:`",
                    variable=f"sglfleet_serving_groups[{index}]",
                )
            )
            collected.failed_groups.add(str(index))
            continue
        label = str(entry.get("name", index))
        var = f"sglfleet_serving_groups[{label}]"
        data = dict(entry)
        shape_ok = True
        for key in ("hosts", "extra_args"):
            if isinstance(data.get(key), str):
                example = (
                    f"[{data[key]}]" if key == "hosts" else str(data[key].split()).replace("'", '"')
                )
                problems.append(
                    Problem(
                        f"{key} is the string {data[key]!r}, not a list",
                        f"write a list: `{key}: {example}`",
                        variable=f"{var}.{key}",
                    )
                )
                shape_ok = False
                data[key] = ()
        if isinstance(data.get("hosts"), list):
            data["hosts"] = tuple(str(h) for h in data["hosts"])
        if isinstance(data.get("extra_args"), list):
            data["extra_args"] = tuple(str(a) for a in data["extra_args"])
        try:
            spec_model = ServingGroupSpec(**data)
        except (ValueError, TypeError) as exc:
            problems += _pydantic_problems(exc, None, f"{var}.", ServingGroupSpec)
            shape_ok = False
        if shape_ok:
            groups.append(spec_model)
        else:
            collected.failed_groups.add(label)

    router: RouterSpec | None = None
    raw_router = gv.get("sglfleet_router")
    if raw_router:
        if not isinstance(raw_router, dict):
            problems.append(
                Problem(
                    f"sglfleet_router must be a mapping, got {raw_router!r}",
                    "write `sglfleet_router: {host: HOST, port: 8000}`",
                    variable="sglfleet_router",
                )
            )
            collected.router_failed = True
        else:
            try:
                router = RouterSpec(**raw_router)
            except (ValueError, TypeError) as exc:
                problems += _pydantic_problems(exc, None, "sglfleet_router.", RouterSpec)
                collected.router_failed = True

    api_key = gv.get("sglfleet_api_key")
    if api_key is not None and not isinstance(api_key, Secret):
        api_key = Secret(str(api_key))
    engine = gv.get("sglfleet_engine", schema.default("sglfleet_engine"))
    if engine not in ("sglang", "rehearsal"):
        problems.append(
            Problem(
                f"sglfleet_engine is {engine!r}",
                "use `sglang` (real serving) or `rehearsal` (the lab's CPU stand-in)",
                variable="sglfleet_engine",
            )
        )
        engine = "sglang"
    try:
        return Inventory(
            path=str(base),
            cluster_name=str(gv.get("sglfleet_cluster_name") or base.name),
            hosts=hosts,
            models=models,
            serving_groups=tuple(groups),
            router=router,
            sglang_version=str(
                gv.get("sglfleet_sglang_version", schema.default("sglfleet_sglang_version"))
            ),
            engine=engine,
            install_dir=str(gv.get("sglfleet_install_dir", schema.default("sglfleet_install_dir"))),
            config_dir=str(gv.get("sglfleet_config_dir", schema.default("sglfleet_config_dir"))),
            models_dir=str(gv.get("sglfleet_models_dir", schema.default("sglfleet_models_dir"))),
            api_key=api_key,
            global_vars=gv,
        )
    except ValueError as exc:
        problems += _pydantic_problems(exc, None, "sglfleet_", Inventory)
        return None
