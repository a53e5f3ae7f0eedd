"""The pinned SGLang release has one owner, `sglfleet_sglang.SGLANG_VERSION`; every place Ansible
or an inventory restates it must agree (Ansible cannot import Python, so the YAML keeps a copy)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sglfleet_sglang import SGLANG_VERSION

ROOT = Path(__file__).resolve().parents[3]


def test_the_role_and_its_spec_pin_the_contracts_release() -> None:
    defaults = yaml.safe_load((ROOT / "roles/sglang_server/defaults/main.yml").read_text())
    specs = yaml.safe_load((ROOT / "roles/sglang_server/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert defaults["sglang_server_version"] == SGLANG_VERSION
    assert str(options["sglang_server_version"]["default"]) == SGLANG_VERSION


def test_playbooks_templates_and_examples_restate_the_same_release() -> None:
    stated: dict[str, str] = {}
    for path in sorted((ROOT / "playbooks").rglob("*.yml")):
        for found in re.findall(
            r"sglfleet_sglang_version \| default\('([^']+)'\)", path.read_text()
        ):
            stated[f"{path.relative_to(ROOT)}"] = found
    for base in ("templates", "inventories"):
        for path in sorted((ROOT / base).rglob("*.yml")):
            data = yaml.safe_load(path.read_text())
            if isinstance(data, dict) and "sglfleet_sglang_version" in data:
                stated[f"{path.relative_to(ROOT)}"] = str(data["sglfleet_sglang_version"])
    assert len(stated) >= 5, stated
    assert {where: v for where, v in stated.items() if v != SGLANG_VERSION} == {}
