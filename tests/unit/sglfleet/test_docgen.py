"""Generated documentation tables match the code that owns their facts (sglfleet.docgen)."""

from __future__ import annotations

from pathlib import Path

from sglfleet import docgen

ROOT = Path(__file__).resolve().parents[3]


def test_every_generated_table_is_current() -> None:
    pages = docgen.pages(ROOT)
    names = {m["name"] for p in pages for m in docgen._BLOCK.finditer(p.read_text())}
    assert names == set(docgen.GENERATORS), "every generator has its block in a page"
    stale = [
        str(p.relative_to(ROOT))
        for p in pages
        if docgen.render(p.read_text(), ROOT) != p.read_text()
    ]
    assert stale == [], f"run `python -m sglfleet.docgen` and commit: {stale}"


def test_a_changed_fact_makes_the_page_stale(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "inventory.md").read_text()
    edited = page.replace("| `H200` | 141 |", "| `H200` | 140 |")
    assert edited != page
    assert docgen.render(edited, ROOT) == page
