"""Generated docs tables and role specs match the code that owns their facts (sglfleet.docgen)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypedDict

import pytest

from sglfleet import docgen
from sglfleet.contract import spec_options

ROOT = Path(__file__).resolve().parents[3]


def test_every_generated_table_is_current() -> None:
    pages = docgen.pages(ROOT)
    names = {m["name"] for p in pages for m in docgen._BLOCK.finditer(p.read_text())}
    assert names == set(docgen.GENERATORS), "every generator has its block in a page"
    in_yaml = {m["name"] for p in pages for m in docgen._YAML_BLOCK.finditer(p.read_text())}
    assert in_yaml == set(docgen.role_specs()) | {"inventory-defaults"}
    stale = [
        str(p.relative_to(ROOT))
        for p in pages
        if docgen.render(p.read_text(), ROOT, p) != p.read_text()
    ]
    assert stale == [], f"run `python -m sglfleet.docgen` and commit: {stale}"


def test_a_changed_fact_makes_the_page_stale(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "inventory.md").read_text()
    edited = page.replace("| `H200` | 141 |", "| `H200` | 140 |")
    assert edited != page
    assert docgen.render(edited, ROOT) == page


def test_a_hand_edit_of_a_generated_spec_is_undone() -> None:
    spec = (ROOT / "roles/sglang_server/meta/argument_specs.yml").read_text()
    edited = spec.replace("port: {type: int, required: true,", "port: {type: str, required: true,")
    assert edited != spec
    assert docgen.render(edited, ROOT) == spec


def test_a_hand_edit_of_a_mirrored_default_is_undone() -> None:
    path = ROOT / "roles/sglang_server/defaults/main.yml"
    defaults = path.read_text()
    edited = defaults.replace(
        'sglang_server_install_dir: "/opt/sglfleet"', "sglang_server_install_dir: /x"
    )
    assert edited != defaults
    assert docgen.render(edited, ROOT, path) == defaults


class _Inner(TypedDict):
    url: Annotated[str, "Where."]


class _Record(TypedDict):
    name: Annotated[str, "Name."]
    rank: Annotated[int | None, "Rank or null."]
    mode: Annotated[Literal["a", "b"], "Mode."]
    peers: Annotated[list[_Inner], "Peers."]
    env: Annotated[dict[str, str], "Env."]


class _Undocumented(TypedDict):
    name: str


def test_specs_follow_the_typeddicts() -> None:
    assert spec_options(_Record) == {
        "name": {"type": "str", "required": True, "description": "Name."},
        "rank": {"type": "int", "description": "Rank or null."},
        "mode": {"type": "str", "choices": ["a", "b"], "required": True, "description": "Mode."},
        "peers": {
            "type": "list",
            "elements": "dict",
            "options": {"url": {"type": "str", "required": True, "description": "Where."}},
            "required": True,
            "description": "Peers.",
        },
        "env": {"type": "dict", "required": True, "description": "Env."},
    }
    with pytest.raises(TypeError, match="no description"):
        spec_options(_Undocumented)
