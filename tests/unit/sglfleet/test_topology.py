"""Pure planning: replicas, TP, memory fit, port claims, and checks.problems() vs plan()."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "broken"))

import cases as broken  # noqa: E402

from sglfleet import checks  # noqa: E402
from sglfleet.cluster import expand_replicas, group_tp, memory_fit, replicas  # noqa: E402
from sglfleet.errors import InventoryError  # noqa: E402
from sglfleet.inventory import load_inventory  # noqa: E402
from sglfleet.topology import plan  # noqa: E402

EXAMPLES = ROOT / "inventories" / "examples"


def test_r1_fits_one_h200_node_but_not_one_h100_node(tmp_path: Path) -> None:
    h200 = load_inventory(EXAMPLES / "deepseek-r1-1x8-h200")
    (replica,) = replicas(h200)
    fit = memory_fit(h200, replica, h200.models["deepseek-r1"])
    assert fit.fits and fit.gpu_memory_gb == 141
    inv = broken.base()
    inv.group("solo")["model"] = "deepseek-r1"
    h100 = load_inventory(broken.write(inv, tmp_path / "inv"))
    solo = next(r for r in replicas(h100) if r.name == "solo")
    fit = memory_fit(h100, solo, h100.models["deepseek-r1"])
    assert not fit.fits
    assert fit.gpu_count == 8 and fit.gpu_memory_gb == 80
    assert fit.hint and "at least 11 GPUs of 80 GB" in fit.hint and "tp=16" in fit.hint
    two_nodes = next(r for r in replicas(h100) if r.name == "tp2")
    assert memory_fit(h100, two_nodes, h100.models["deepseek-r1"]).fits


def test_check_reports_memory_but_plan_still_plans(tmp_path: Path) -> None:
    inv = broken.base()
    inv.group("solo")["model"] = "deepseek-r1"
    loaded = load_inventory(broken.write(inv, tmp_path / "inv"))
    (problem,) = checks.problems(loaded)
    assert problem.variable == "sglfleet_serving_groups[solo].hosts"
    assert problem == checks.memory_problems(loaded)[0]
    assert checks.problems(loaded, include_memory=False) == []
    assert [g.memory.fits for g in plan(loaded).serving_groups] == [True, False]


def test_replicas_split_by_nodes_per_replica() -> None:
    inv = load_inventory(EXAMPLES / "qwen3-8b-4x1")
    (spec,) = inv.serving_groups
    names = [r.name for r in expand_replicas(spec)]
    assert names == ["qwen-0", "qwen-1", "qwen-2", "qwen-3"]
    assert all(group_tp(inv, r) == 1 for r in replicas(inv))


def test_two_node_group_ranks_and_dist_init() -> None:
    cluster = plan(load_inventory(EXAMPLES / "deepseek-r1-2x8-h100"))
    (group,) = cluster.serving_groups
    assert group.nnodes == 2 and group.tp == 16
    assert group.dist_init_addr == "10.20.0.11:20000"
    assert [n.node_rank for n in group.nodes] == [0, 1]
    assert cluster.endpoint == "http://192.0.2.11:8000/v1"


def test_plan_raises_inventory_error_with_every_problem(tmp_path: Path) -> None:
    inv = broken.base()
    inv.group("solo")["tp"] = 3
    inv.cluster["sglfleet_router"]["port"] = 30000
    loaded = load_inventory(broken.write(inv, tmp_path / "inv"))
    with pytest.raises(InventoryError) as raised:
        plan(loaded)
    variables = {p.variable for p in raised.value.problems}
    assert variables == {"sglfleet_serving_groups[solo].tp", "sglfleet_router.port"}


@pytest.mark.parametrize(
    ("field", "value", "clash"),
    [
        ("nccl_port", 30000, "solo API and solo NCCL"),
        ("port", 8000, "solo API and router"),
    ],
)
def test_port_claims_on_one_host(tmp_path: Path, field: str, value: int, clash: str) -> None:
    inv = broken.base()
    inv.group("solo")[field] = value
    problems = checks.problems(load_inventory(broken.write(inv, tmp_path / "inv")))
    assert any(clash in p.message and p.host == "n3" for p in problems), problems


def test_prefill_bootstrap_port_is_claimed(tmp_path: Path) -> None:
    inv = broken.base()
    dis = {"transfer_backend": "mooncake", "bootstrap_port": 30000}
    inv.group("tp2").update(mode="prefill", disaggregation=dis)
    inv.group("solo").update(mode="decode", disaggregation={"transfer_backend": "mooncake"})
    problems = checks.problems(load_inventory(broken.write(inv, tmp_path / "inv")))
    assert any("tp2 API and tp2 PD bootstrap" in p.message for p in problems), problems


def test_examples_plan_without_problems() -> None:
    for example in sorted(EXAMPLES.iterdir()):
        assert checks.problems(load_inventory(example)) == [], example.name
