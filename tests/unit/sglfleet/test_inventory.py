"""Loading Ansible YAML inventories: layering, secrets, YAML errors with lines, name checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from sglfleet.errors import InventoryError
from sglfleet.inventory import load_inventory, read_yaml
from sglfleet.models import Secret

ROOT = Path(__file__).resolve().parents[3]

HOSTS = """\
all:
  vars:
    ansible_user: root
  children:
    sglfleet_gpu_nodes:
      vars:
        sglfleet_gpu_model: H100-SXM5-80GB
      hosts:
        n1:
          ansible_host: 192.0.2.1
          sglfleet_gpu_count: 8
    sglfleet_routers:
      hosts:
        n1:
"""

CLUSTER = """\
sglfleet_models:
  m:
    hub: mirror
    mirror_path: /srv/models/m
    weights_gb: 10
sglfleet_serving_groups:
  - name: g
    model: m
    hosts: [n1]
    tp: 8
"""


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {"hosts.yml": HOSTS, "group_vars/all/cluster.yml": CLUSTER}
    base.update(files)
    for relative, text in base.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def load_problems(directory: Path) -> list[str]:
    with pytest.raises(InventoryError) as raised:
        load_inventory(directory)
    assert raised.value.exit_code == 2
    return [f"{p.render()} || {p.hint}" for p in raised.value.problems]


def test_layers_group_vars_files_host_vars_and_inline(tmp_path: Path) -> None:
    directory = make(
        tmp_path,
        {
            "group_vars/sglfleet_gpu_nodes.yml": "sglfleet_gpu_memory_gb: 79\n",
            "host_vars/n1/fabric.yml": "sglfleet_fabric_address: 10.0.0.1\n",
        },
    )
    inv = load_inventory(directory)
    host = inv.hosts["n1"]
    assert host.gpu_model == "H100-SXM5-80GB"  # inline group vars
    assert host.gpu_memory_gb == 79  # group_vars file
    assert host.fabric_address == "10.0.0.1"  # host_vars directory
    assert host.groups == ("all", "sglfleet_gpu_nodes", "sglfleet_routers")
    assert host.vars["ansible_user"] == "root"


def test_secrets_stay_secret(tmp_path: Path) -> None:
    directory = make(
        tmp_path,
        {"group_vars/all/secrets.yml": "sglfleet_api_key: sk-123\nmodel_weights_hub_token: hf_x\n"},
    )
    inv = load_inventory(directory)
    assert isinstance(inv.api_key, Secret)
    assert "sk-123" not in repr(inv.api_key)
    assert isinstance(inv.global_vars["model_weights_hub_token"], Secret)


def test_vault_values_load_as_secrets(tmp_path: Path) -> None:
    path = tmp_path / "v.yml"
    path.write_text("k: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3131\n")
    assert isinstance(read_yaml(path)["k"], Secret)


def test_yaml_errors_in_several_files_are_all_reported_with_lines(tmp_path: Path) -> None:
    directory = make(
        tmp_path,
        {
            "group_vars/all/a.yml": "x: [1\ny: 2\n",
            "group_vars/sglfleet_gpu_nodes.yml": "a:\n  b: 1\n c: 2\n",
        },
    )
    problems = load_problems(directory)
    assert any("a.yml line 2" in p and "`y: 2`" in p for p in problems), problems
    assert any("sglfleet_gpu_nodes.yml line 3" in p for p in problems), problems


def test_yaml_error_in_hosts_yml_names_the_line(tmp_path: Path) -> None:
    directory = make(
        tmp_path, {"hosts.yml": HOSTS.replace("ansible_user: root", "ansible_user: [")}
    )
    (problem,) = load_problems(directory)
    assert "hosts.yml line " in problem and "fix the YAML at line" in problem


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    directory = make(
        tmp_path, {"group_vars/all/x.yml": "sglfleet_engine: sglang\nsglfleet_engine: rehearsal\n"}
    )
    (problem,) = load_problems(directory)
    assert "duplicate key `sglfleet_engine` (first at line 1)" in problem


def test_unknown_variables_get_suggestions_by_prefix(tmp_path: Path) -> None:
    directory = make(
        tmp_path,
        {
            "group_vars/all/x.yml": (
                "nccl_tuning_ib_timout: 22\nsglfleet_serving_group: []\nsomething_else: 1\n"
            ),
            "host_vars/n1.yml": "sglfleet_fabric_adress: 10.0.0.1\n",
        },
    )
    problems = load_problems(directory)
    assert len(problems) == 3, problems  # something_else has no role prefix: Ansible's business
    assert any("did you mean `nccl_tuning_ib_timeout`" in p for p in problems)
    assert any("did you mean `sglfleet_serving_groups`" in p for p in problems)
    assert any("host n1" in p and "did you mean `sglfleet_fabric_address`" in p for p in problems)


def test_missing_inventory_and_missing_all(tmp_path: Path) -> None:
    (problem,) = load_problems(tmp_path / "nowhere")
    assert "no inventory at" in problem
    directory = make(tmp_path / "b", {"hosts.yml": "sglfleet_gpu_nodes:\n  hosts:\n    n1:\n"})
    (problem,) = load_problems(directory)
    assert "must start with `all:` (found `sglfleet_gpu_nodes:`)" in problem


def test_wrong_host_variable_types_name_the_host(tmp_path: Path) -> None:
    directory = make(
        tmp_path, {"host_vars/n1.yml": "sglfleet_gpu_count: eight\nsglfleet_rdma_hcas: mlx5_0\n"}
    )
    problems = load_problems(directory)
    assert any(
        "[host n1, variable sglfleet_gpu_count]" in p and "whole number" in p for p in problems
    )
    assert any("sglfleet_rdma_hcas: [mlx5_0]" in p for p in problems)


def test_misspelt_group_keys_in_hosts_yml(tmp_path: Path) -> None:
    directory = make(
        tmp_path,
        {
            "hosts.yml": HOSTS.replace(
                "      hosts:\n        n1:\n          ansible",
                "      host:\n        n1:\n          ansible",
            )
        },
    )
    problems = load_problems(directory)
    assert any("did you mean `hosts:`" in p for p in problems), problems


def test_examples_load() -> None:
    for example in sorted((ROOT / "inventories" / "examples").iterdir()):
        inv = load_inventory(example)
        assert inv.serving_groups and inv.hosts
