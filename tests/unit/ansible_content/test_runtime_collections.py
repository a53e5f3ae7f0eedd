"""A controller installed with `pip install .` (no dev extra) can run every playbook (issue 13
item 11): each collection the playbooks and roles use comes with a runtime dependency."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]
FQCN = re.compile(r"^([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+$")
# Filters, tests and lookups named by FQCN inside Jinja.
JINJA_FQCN = re.compile(
    r"(?:\|\s*|\bis\s+(?:not\s+)?|(?:lookup|query|q)\(\s*['\"])"
    r"([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+"
)
# Shipped by ansible-core itself.
CORE = {"ansible.builtin", "ansible.legacy"}


def _yaml_files() -> Iterator[Path]:
    yield ROOT / "site.yml"
    yield from sorted((ROOT / "playbooks").rglob("*.yml"))
    yield from sorted((ROOT / "roles").rglob("*.yml"))


def _walk(node: Any) -> Iterator[tuple[str, str]]:
    """(kind, collection) for every module key and every Jinja FQCN below node."""
    if isinstance(node, dict):
        for key, value in node.items():
            match = FQCN.match(str(key))
            # A task names its module beside `name`; sysctl maps (net.ipv4.x: 1) have no name.
            if match and "name" in node:
                yield "module", f"{match.group(1)}.{match.group(2)}"
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, str):
        for ns, name in JINJA_FQCN.findall(node):
            yield "plugin", f"{ns}.{name}"


def used_collections() -> dict[str, set[str]]:
    """Collection -> files that use it (modules by task key; filters/tests/lookups in Jinja)."""
    found: dict[str, set[str]] = {}
    for path in _yaml_files():
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        for _kind, collection in _walk(documents):
            found.setdefault(collection, set()).add(str(path.relative_to(ROOT)))
    for path in sorted((ROOT / "roles").rglob("*.j2")):
        for ns, name in JINJA_FQCN.findall(path.read_text(encoding="utf-8")):
            found.setdefault(f"{ns}.{name}", set()).add(str(path.relative_to(ROOT)))
    return found


def _runtime_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    return {r.name.lower(): r for r in requirements}


def _collections_in(distribution: str) -> set[str]:
    files = metadata.distribution(distribution).files or []
    return {
        f"{parts[1]}.{parts[2]}"
        for parts in (Path(str(f)).parts for f in files)
        if len(parts) == 4 and parts[0] == "ansible_collections" and parts[3] == "MANIFEST.json"
    }


def test_the_scan_finds_what_the_roles_use() -> None:
    used = used_collections()
    assert "ansible.builtin" in used
    assert "community.general" in used  # modprobe (nvidia_driver, rdma_network)
    assert "ansible.posix" in used  # mount (host_tuning)
    # sysctl keys such as net.core.rmem_max are not collections
    assert not any(c.startswith("net.") for c in used)


def test_every_collection_comes_with_a_runtime_dependency() -> None:
    runtime = _runtime_requirements()
    assert "ansible-core" in runtime
    needed = {c: files for c, files in used_collections().items() if c not in CORE}
    if not needed:
        return
    assert "ansible" in runtime, (
        f"playbooks use {sorted(needed)} but `ansible` (which bundles them) is not a runtime"
        " dependency in pyproject.toml [project].dependencies"
    )
    try:
        bundled = _collections_in("ansible")
    except metadata.PackageNotFoundError:
        pytest.skip("the `ansible` package is not installed here")
    installed = metadata.version("ansible")
    assert runtime["ansible"].specifier.contains(installed), installed
    missing = {c: sorted(files)[:3] for c, files in needed.items() if c not in bundled}
    assert not missing, f"not in ansible {installed}: {missing}"


def test_dev_extra_is_not_where_the_collections_come_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = [Requirement(r).name.lower() for r in project["optional-dependencies"]["dev"]]
    assert "ansible" not in dev
