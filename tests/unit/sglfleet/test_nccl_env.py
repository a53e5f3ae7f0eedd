"""sglfleet.nccl: the NCCL/Gloo variables the plan derives per node (nccl_tuning writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sglfleet.inventory import load_inventory
from sglfleet.models import Host
from sglfleet.nccl import exact_list, node_nccl_env
from sglfleet.topology import plan, plan_json

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "inventories" / "examples" / "deepseek-r1-2x8-h100"
SINGLE_NODE_EXAMPLE = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"
HCAS = ["mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"]


def _host(**fields: object) -> Host:
    return Host(name="n1", **fields)  # type: ignore[arg-type]


def test_every_rank_of_the_2x8_example_gets_one_gloo_interface_and_its_hcas() -> None:
    document = plan_json(plan(load_inventory(EXAMPLE)))
    nodes = [n for g in document["serving_groups"] for n in g["nodes"]]
    assert [n["node_rank"] for n in nodes] == [0, 1]
    for node in nodes:
        assert not [k for k in node["env"] if k.startswith(("NCCL_", "GLOO_"))]  # one owner
        env = node["nccl_env"]
        assert env["GLOO_SOCKET_IFNAME"] == "ibp24s0"
        assert not set(env["GLOO_SOCKET_IFNAME"]) & set(",=^ ")
        assert env["NCCL_SOCKET_IFNAME"] == "=ibp24s0"
        assert env["NCCL_IB_HCA"] == "=" + ",".join(HCAS)
        assert env["NCCL_IB_QPS_PER_CONNECTION"] == "8"
        assert env["NCCL_IB_TIMEOUT"] == "22"
        assert env["NCCL_IB_RETRY_CNT"] == "12"
        assert env["NCCL_NVLS_ENABLE"] == "0"
        assert "NCCL_IB_GID_INDEX" not in env  # InfiniBand: no GID index


def test_single_node_groups_get_their_tuning_values_from_the_plan_too() -> None:
    # The role no longer derives tuning values, so a plan without them would leave NCCL's defaults.
    document = plan_json(plan(load_inventory(SINGLE_NODE_EXAMPLE)))
    nodes = [n for g in document["serving_groups"] for n in g["nodes"]]
    assert len(nodes) == 4
    for node in nodes:
        assert node["nccl_env"] == {
            "NCCL_IB_QPS_PER_CONNECTION": "8",
            "NCCL_IB_TIMEOUT": "22",
            "NCCL_IB_RETRY_CNT": "12",
            "NCCL_DEBUG": "WARN",
        }


def test_exact_match_list_keeps_mlx5_1_from_matching_mlx5_10() -> None:
    assert exact_list(["mlx5_1", "mlx5_2"]) == "=mlx5_1,mlx5_2"
    assert exact_list(("=mlx5_0:1", " mlx5_3 ")) == "=mlx5_0:1,mlx5_3"
    assert exact_list([]) == ""


def test_host_variables_win_over_cluster_ones_and_templates_are_skipped() -> None:
    host = _host(
        fabric_interface="enp24s0np0",
        rdma_hcas=("mlx5_0",),
        vars={"nccl_tuning_ib_gid_index": 3, "nccl_tuning_debug": "INFO"},
    )
    variables = {
        "nccl_tuning_debug": "WARN",
        "nccl_tuning_ib_timeout": 22,
        "nccl_tuning_ib_retry_cnt": "{{ some_template }}",
        "nccl_tuning_nvls_enable": "",
        "nccl_tuning_extra_env": {"NCCL_CROSS_NIC": 1, "TORCH_NCCL_BLOCKING_WAIT": True},
    }
    env = node_nccl_env(host, host, variables)
    assert env["NCCL_DEBUG"] == "INFO"
    assert env["NCCL_IB_GID_INDEX"] == "3"
    assert env["NCCL_IB_TIMEOUT"] == "22"
    assert "NCCL_IB_RETRY_CNT" not in env
    assert "NCCL_NVLS_ENABLE" not in env
    assert env["NCCL_CROSS_NIC"] == "1"
    assert env["TORCH_NCCL_BLOCKING_WAIT"] == "1"
    assert env["GLOO_SOCKET_IFNAME"] == "enp24s0np0"


def test_gid_index_discovered_at_converge_is_not_shown_as_a_value() -> None:
    host = _host(rdma_hcas=("mlx5_0",), vars={"nccl_tuning_ib_gid_index": "discovered"})
    assert "NCCL_IB_GID_INDEX" not in node_nccl_env(host, host, {})
    assert "NCCL_IB_GID_INDEX" not in node_nccl_env(host, host, {"nccl_tuning_ib_gid_index": ""})


def test_undeclared_interface_is_left_to_the_role() -> None:
    env = node_nccl_env(_host(), _host(), {"nccl_tuning_debug": "WARN"})
    assert "GLOO_SOCKET_IFNAME" not in env and "NCCL_SOCKET_IFNAME" not in env
    assert env == {"NCCL_DEBUG": "WARN"}


@pytest.mark.parametrize("default", ["ib_qps_per_connection", "ib_timeout", "ib_retry_cnt"])
def test_role_defaults_are_what_the_plan_shows(default: str) -> None:
    import yaml

    defaults = yaml.safe_load((ROOT / "roles/nccl_tuning/defaults/main.yml").read_text())
    expected = {"ib_qps_per_connection": 8, "ib_timeout": 22, "ib_retry_cnt": 12}[default]
    assert defaults[f"nccl_tuning_{default}"] == expected
    env = node_nccl_env(_host(), _host(), defaults)
    name = {"ib_qps_per_connection": "NCCL_IB_QPS_PER_CONNECTION"}.get(
        default, f"NCCL_{default.upper()}"
    )
    assert env[name] == str(expected)
