"""Documentation tables and role specs generated from the code that owns their facts.

A generated table sits in a docs page between `<!-- generated: NAME -->` and `<!-- end: NAME -->`;
a generated part of a role's `meta/argument_specs.yml` between `# generated: NAME` and
`# end: NAME` comments (at the indentation of the block). `python -m sglfleet.docgen` rewrites
every such block, and tests/unit/sglfleet/test_docgen.py fails when a file differs from what the
code would write (edit the code, then regenerate).

- `gpu-catalog`: `sglfleet.hardware.GPU_CATALOG`;
- `planner-inputs`: the role inputs the plan feeds (`sglfleet.contract.PLANNER_FED`), option by
  option;
- `spec-<role input>`: the `options:` of that input in its role's argument specs, from its
  TypedDict in `sglfleet.contract`;
- `host-variables`, `cluster-variables`, `model-keys`, `group-keys`, `router-keys`: the
  inventory's tables in docs/inventory.md, from `sglfleet.schema` and the typed models;
- `inventory-defaults`: a role's defaults that repeat an inventory default (`schema.MIRRORS`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sglfleet import hardware, schema
from sglfleet.contract import FILTER_FED, PLANNER_FED, spec_options
from sglfleet.models import ModelSpec, RouterSpec, ServingGroupSpec
from sglfleet.paths import project_root

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S
)
_YAML_BLOCK = re.compile(
    r"^(?P<indent> *)(?P<open># generated: (?P<name>[\w-]+)[^\n]*\n)(?P<body>.*?)"
    r"^(?P=indent)(?P<close># end: (?P=name)\n)",
    re.S | re.M,
)


def _cell(value: Any) -> str:
    return "—" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def gpu_catalog(_root: Path) -> str:
    rows = [
        "| fragment | memory (GB) | line rate (GB/s per direction) | link | FP8 |",
        "|---|---|---|---|---|",
    ]
    for f in hardware.GPU_CATALOG:
        fp8 = {True: "yes", False: "no", None: "—"}[f.fp8]
        rate = None if f.line_rate_gbps is None else f"{f.line_rate_gbps:g}"
        memory = None if f.memory_gb is None else f"{f.memory_gb:g}"
        rows.append(
            f"| `{f.fragment}` | {_cell(memory)} | {_cell(rate)} | {_cell(f.link)} | {fp8} |"
        )
    return "\n".join(rows) + "\n"


def role_option(root: Path, role: str, name: str) -> dict[str, Any]:
    specs = yaml.safe_load((root / "roles" / role / "meta" / "argument_specs.yml").read_text())
    option: dict[str, Any] = specs["argument_specs"]["main"]["options"][name]
    return option


def _type(option: dict[str, Any]) -> str:
    kind = str(option.get("type", "raw"))
    if kind == "list" and option.get("elements"):
        kind = f"list of {option['elements']}"
    return kind


def planner_inputs(_root: Path) -> str:
    rows = ["| role input | from `sglfleet_plan` | option | type | required | meaning |"]
    rows.append("|---|---|---|---|---|---|")
    inputs = [(name, f"`{key}`", record) for (_r, name), (key, record) in PLANNER_FED.items()]
    inputs += [
        (f"{name}[]", f"`{key}` via `{via}`", record)
        for (_r, name), (key, via, record) in FILTER_FED.items()
    ]
    for name, source, record in inputs:
        for sub, spec in spec_options(record).items():
            rows.append(
                f"| `{name}` | {source} | `{sub}` | {_type(spec)} |"
                f" {'yes' if spec.get('required') else 'no'} | {_cell(spec.get('description'))} |"
            )
    return "\n".join(rows) + "\n"


def _flow(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def spec_yaml(options: dict[str, dict[str, Any]], indent: int) -> str:
    """argument_specs `options:` as the roles write them: one flow line per leaf option."""
    pad = " " * indent
    lines: list[str] = []
    for name, option in options.items():
        nested = option.get("options")
        if nested is None:
            lines.append(f"{pad}{name}: {_flow(option)}")
            continue
        lines.append(f"{pad}{name}:")
        for key, value in option.items():
            if key != "options":
                lines.append(f"{pad}  {key}: {_flow({key: value})[1:-1].split(': ', 1)[1]}")
        lines.append(f"{pad}  options:")
        lines.append(spec_yaml(nested, indent + 4).rstrip("\n"))
    return "\n".join(lines) + "\n"


def role_specs() -> dict[str, type]:
    """`spec-<input>` -> the TypedDict its options are generated from."""
    specs = {f"spec-{name}": record for (_role, name), (_key, record) in PLANNER_FED.items()}
    specs.update({f"spec-{name}": rec for (_role, name), (_k, _via, rec) in FILTER_FED.items()})
    return specs


def _variables(variables: tuple[schema.Variable, ...], with_type: bool) -> str:
    if with_type:
        rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    else:
        rows = ["| variable | default | meaning |", "|---|---|---|"]
    for v in variables:
        kind = f" {_cell(v.kind)} |" if with_type else ""
        rows.append(f"| `{v.name}` |{kind} {_cell(v.shown_default())} | {_cell(v.meaning)} |")
    return "\n".join(rows) + "\n"


def host_variables(_root: Path) -> str:
    return _variables(schema.HOST_VARIABLES, with_type=True)


def cluster_variables(_root: Path) -> str:
    return _variables(schema.CLUSTER_VARIABLES, with_type=True)


def _typed_default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    if isinstance(value, tuple | list):
        return "`[]`" if not value else f"`{list(value)}`"
    return str(value)


def _keys(model: type[BaseModel], keys: tuple[schema.Key, ...]) -> str:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key in keys:
        shown = (
            key.default_text if key.default_text is not None else _typed_default(model, key.name)
        )
        rows.append(f"| `{key.name}` | {_cell(shown)} | {_cell(key.meaning)} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[Path], str]] = {
    "gpu-catalog": gpu_catalog,
    "planner-inputs": planner_inputs,
    "host-variables": host_variables,
    "cluster-variables": cluster_variables,
    "model-keys": lambda _root: _keys(ModelSpec, schema.MODEL_KEYS),
    "group-keys": lambda _root: _keys(ServingGroupSpec, schema.GROUP_KEYS),
    "router-keys": lambda _root: _keys(RouterSpec, schema.ROUTER_KEYS),
}


def mirrored_defaults(role: str, indent: int) -> str:
    """The role's defaults that repeat an inventory default, one `name: value` line each."""
    pad = " " * indent
    lines = [
        f"{pad}{m.variable}: {json.dumps(m.value())}" for m in schema.MIRRORS if m.role == role
    ]
    return "\n".join(lines) + "\n"


def render(text: str, root: Path, path: Path | None = None) -> str:
    """The page (spec or defaults file at `path`) with every generated block rewritten."""

    def block(match: re.Match[str]) -> str:
        body = GENERATORS[match["name"]](root)
        return f"{match.group(1)}{body}{match.group(4)}"

    def yaml_block(match: re.Match[str]) -> str:
        indent = match["indent"]
        if match["name"] == "inventory-defaults":
            if path is None:
                raise ValueError("inventory-defaults needs the defaults file's path")
            body = mirrored_defaults(path.parent.parent.name, len(indent))
        else:
            body = spec_yaml(spec_options(role_specs()[match["name"]]), len(indent))
        return f"{indent}{match['open']}{body}{indent}{match['close']}"

    return _YAML_BLOCK.sub(yaml_block, _BLOCK.sub(block, text))


def pages(root: Path) -> list[Path]:
    """Docs pages, role spec and role defaults files that hold a generated block."""
    candidates = [
        *(root / "docs").glob("*.md"),
        *(root / "roles").glob("*/meta/argument_specs.yml"),
        *(root / "roles").glob("*/defaults/main.yml"),
    ]
    return sorted(
        p for p in candidates if _BLOCK.search(p.read_text()) or _YAML_BLOCK.search(p.read_text())
    )


def main() -> None:
    root = project_root()
    for page in pages(root):
        text = page.read_text()
        new = render(text, root, page)
        if new != text:
            page.write_text(new)
            sys.stdout.write(f"rewrote {page.relative_to(root)}\n")


if __name__ == "__main__":
    main()
