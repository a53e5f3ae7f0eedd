"""The inventory's variables are declared once (sglfleet.schema); everything that repeats one of
them (the typed models, the loader, the roles' mirrored defaults, the playbooks' `default(...)`,
the argument specs) agrees with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sglfleet import inventory, schema
from sglfleet.models import Host, Inventory, ModelSpec, RouterSpec, ServingGroupSpec

ROOT = Path(__file__).resolve().parents[3]
INTERNAL = {Host: {"name", "groups", "vars"}, Inventory: {"path", "hosts", "global_vars"}}


def _default(model: type[BaseModel], name: str) -> Any:
    field = model.model_fields[name]
    return field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("model", "variables"),
    [(Host, schema.HOST_VARIABLES), (Inventory, schema.CLUSTER_VARIABLES)],
)
def test_every_typed_field_is_declared_once(
    model: type[BaseModel], variables: tuple[schema.Variable, ...]
) -> None:
    fields = [v.field for v in variables if v.field is not None]
    assert len(fields) == len(set(fields))
    assert set(fields) == set(model.model_fields) - INTERNAL[model]
    for v in variables:
        if v.field is None or v.default is None:
            continue
        typed = _default(model, v.field)
        if typed is not PydanticUndefined:
            assert typed == v.default, v.name


@pytest.mark.parametrize(
    ("model", "keys", "outside"),
    [
        (ModelSpec, schema.MODEL_KEYS, {"name"}),  # a model's name is its key in sglfleet_models
        (ServingGroupSpec, schema.GROUP_KEYS, set()),
        (RouterSpec, schema.ROUTER_KEYS, set()),
    ],
)
def test_every_key_of_a_nested_value_is_documented(
    model: type[BaseModel], keys: tuple[schema.Key, ...], outside: set[str]
) -> None:
    assert [k.name for k in keys] == [f for f in model.model_fields if f not in outside]


def test_the_loader_knows_exactly_the_declared_variables() -> None:
    declared = {v.name for v in schema.VARIABLES.values() if v.name.startswith("sglfleet_")}
    assert declared == inventory.KNOWN_SGLFLEET_VARIABLES
    assert set(inventory.HOST_VARIABLES.values()) == {
        v.field
        for v in schema.HOST_VARIABLES
        if v.name.startswith("sglfleet_") and v.field is not None
    }


def test_the_loader_fills_in_the_declared_defaults(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"sglfleet_gpu_nodes": {"hosts": {"n1": {}}}}}})
    )
    inv = inventory.load_inventory(tmp_path)
    for v in schema.CLUSTER_VARIABLES:
        if v.field is not None and v.default is not None:
            assert getattr(inv, v.field) == v.default, v.name


def _role_defaults(role: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (ROOT / "roles" / role / "defaults/main.yml").read_text()
    )
    return loaded


def _spec_default(role: str, name: str) -> Any:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    return (
        specs["argument_specs"]["main"]["options"].get(name, {}).get("default", PydanticUndefined)
    )


def _playbook_text() -> str:
    files = [*ROOT.glob("site.yml"), *ROOT.glob("playbooks/**/*.yml")]
    return "\n".join(p.read_text() for p in files)


@pytest.mark.parametrize("mirror", schema.MIRRORS, ids=lambda m: m.variable)
def test_a_mirrored_role_default_follows_the_inventory(mirror: schema.Mirror) -> None:
    assert _role_defaults(mirror.role)[mirror.variable] == mirror.value()
    spec_default = _spec_default(mirror.role, mirror.variable)
    if spec_default is not PydanticUndefined:
        assert str(spec_default) == mirror.value(), f"{mirror.role} argument_specs"
    # The playbooks pass the inventory's value, so setting it moves the role too.
    literal = re.escape(repr(schema.default(mirror.source)))
    suffix = re.escape(mirror.template.replace("{}", "", 1))
    passed = rf"{mirror.variable}: \"\{{\{{ \(?{mirror.source} \| default\({literal}\)\)?"
    assert re.search(passed + r"[^\n]*" + suffix, _playbook_text()), (
        f"no playbook passes {mirror.variable} from {mirror.source}"
    )


_INLINE_DEFAULT = re.compile(r"\b(sglfleet_[a-z_]+) \| default\(('[^']*'|[0-9.]+|true|false)\)")
_ROUTER_DEFAULT = re.compile(r"\bsglfleet_router\.([a-z_]+) \| default\(('[^']*'|[0-9.]+)\)")


def test_every_playbook_default_of_an_inventory_variable_is_the_declared_one() -> None:
    text = _playbook_text()
    checked = 0
    for name, literal in _INLINE_DEFAULT.findall(text):
        variable = schema.VARIABLES.get(name)
        if variable is None or variable.default is None:
            continue
        assert yaml.safe_load(literal.strip("'")) == yaml.safe_load(str(variable.default)), name
        checked += 1
    for key, literal in _ROUTER_DEFAULT.findall(text):
        assert yaml.safe_load(literal.strip("'")) == _default(RouterSpec, key), key
        checked += 1
    assert checked >= 15


def test_a_wrong_playbook_default_would_be_seen() -> None:
    (name, literal), *_ = _INLINE_DEFAULT.findall(
        "x: {{ sglfleet_install_dir | default('/opt/x') }}"
    )
    assert yaml.safe_load(literal.strip("'")) != schema.default(name)
