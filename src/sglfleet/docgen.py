"""Documentation tables generated from the code that owns their facts.

A generated table sits in a docs page between `<!-- generated: NAME -->` and `<!-- end: NAME -->`;
`python -m sglfleet.docgen` rewrites every such block, and tests/unit/sglfleet/test_docgen.py fails
when a page differs from what the code would write (edit the code, then regenerate).

- `gpu-catalog`: `sglfleet.hardware.GPU_CATALOG`;
- `planner-inputs`: the role inputs the plan feeds (`PLANNER_FED`), option by option, from the
  roles' `meta/argument_specs.yml`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sglfleet import hardware
from sglfleet.paths import project_root

# role input <- the key of the host's sglfleet_plan that the playbooks pass to it
PLANNER_FED: dict[tuple[str, str], str] = {
    ("sglang_server", "sglang_server_launch"): "launch",
    ("sglang_router", "sglang_router_workers"): "router_workers",
    ("monitoring", "monitoring_prometheus_targets"): "monitoring_targets",
}

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S
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


def planner_inputs(root: Path) -> str:
    rows = ["| role input | from `sglfleet_plan` | option | type | required | meaning |"]
    rows.append("|---|---|---|---|---|---|")
    for (role, name), key in PLANNER_FED.items():
        option = role_option(root, role, name)
        for sub, spec in option.get("options", {}).items():
            rows.append(
                f"| `{name}` | `{key}` | `{sub}` | {_type(spec)} |"
                f" {'yes' if spec.get('required') else 'no'} | {_cell(spec.get('description'))} |"
            )
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[Path], str]] = {
    "gpu-catalog": gpu_catalog,
    "planner-inputs": planner_inputs,
}


def render(text: str, root: Path) -> str:
    """The page with every generated block rewritten."""

    def block(match: re.Match[str]) -> str:
        body = GENERATORS[match["name"]](root)
        return f"{match.group(1)}{body}{match.group(4)}"

    return _BLOCK.sub(block, text)


def pages(root: Path) -> list[Path]:
    return sorted(p for p in (root / "docs").glob("*.md") if _BLOCK.search(p.read_text()))


def main() -> None:
    root = project_root()
    for page in pages(root):
        text = page.read_text()
        new = render(text, root)
        if new != text:
            page.write_text(new)
            sys.stdout.write(f"rewrote {page.relative_to(root)}\n")


if __name__ == "__main__":
    main()
