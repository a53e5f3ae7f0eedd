"""Inventory validation: every broken case names host, variable and fix; valid ones stay clean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "broken"))

import cases as broken  # noqa: E402

from sglfleet import checks  # noqa: E402
from sglfleet.errors import (  # noqa: E402
    InventoryError,
    Problem,
    readable_order,
)
from sglfleet.inventory import load_inventory  # noqa: E402
from sglfleet.lab.podman import LabNode, lab_inventory_vars  # noqa: E402
from sglfleet.topology import plan  # noqa: E402

EXAMPLES = sorted(p for p in (ROOT / "inventories" / "examples").iterdir() if p.is_dir())


def problems_of(directory: Path, include_memory: bool = True) -> list[Problem]:
    """What validation reports: load-time problems, else the cross-checks."""
    try:
        inventory = load_inventory(directory)
    except InventoryError as exc:
        return exc.problems
    return checks.problems(inventory, include_memory=include_memory)


def matches(problem: Problem, expect: broken.Expect) -> bool:
    return (
        (expect.variable is None or problem.variable == expect.variable)
        and problem.host == expect.host
        and expect.message in problem.message
        and expect.hint in problem.hint
    )


def assert_reported(problems: list[Problem], expect: broken.Expect) -> None:
    shown = "\n".join(f"  {p.render()} | hint: {p.hint} | host={p.host}" for p in problems)
    assert any(matches(p, expect) for p in problems), f"{expect} not in:\n{shown}"


def test_catalog_has_at_least_25_distinct_cases() -> None:
    names = [case.name for case in broken.CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 25


def test_valid_base_is_clean_and_plans(tmp_path: Path) -> None:
    directory = broken.valid(tmp_path / "inv")
    assert problems_of(directory) == []
    cluster = plan(load_inventory(directory))
    assert [g.name for g in cluster.serving_groups] == ["tp2", "solo"]


@pytest.mark.parametrize("case", broken.CASES, ids=lambda c: c.name)
def test_broken_inventory_is_reported(case: broken.Case, tmp_path: Path) -> None:
    directory = broken.build(case, tmp_path / "inv")
    problems = problems_of(directory)
    assert problems, f"{case.name}: no problem reported"
    for expect in case.expect:
        assert_reported(problems, expect)
    for problem in problems:
        assert problem.hint.strip(), f"{problem.render()} has no hint"


def test_memory_fit_is_left_to_plan_output_when_asked(tmp_path: Path) -> None:
    case = next(c for c in broken.CASES if c.in_plan_only)
    directory = broken.build(case, tmp_path / "inv")
    assert problems_of(directory, include_memory=False) == []
    cluster = plan(load_inventory(directory))
    solo = next(g for g in cluster.serving_groups if g.name == "solo")
    assert not solo.memory.fits
    assert "DOES NOT FIT" in solo.memory.message
    assert solo.memory.hint and "at least 11 GPUs" in solo.memory.hint


def test_every_problem_is_collected_in_one_run(tmp_path: Path) -> None:
    directory = broken.build(broken.MANY_PROBLEMS, tmp_path / "inv")
    with pytest.raises(InventoryError) as raised:
        load_inventory(directory)
    problems = raised.value.problems
    for expect in broken.MANY_PROBLEMS.expect:
        assert_reported(problems, expect)
    assert raised.value.exit_code == 2


def test_type_errors_do_not_hide_cross_reference_errors(tmp_path: Path) -> None:
    """A group that does not type is left out of the cross-checks, not reported twice."""
    inv = broken.base()
    inv.group("solo")["tp"] = "eight"
    inv.cluster["sglfleet_router"]["port"] = 30000  # clashes with tp2? no: router is on n3
    inv.group("tp2")["hosts"] = ["n1", "n9"]
    directory = broken.write(inv, tmp_path / "inv")
    with pytest.raises(InventoryError) as raised:
        load_inventory(directory)
    variables = [p.variable for p in raised.value.problems]
    assert "sglfleet_serving_groups[solo].tp" in variables
    assert "sglfleet_serving_groups[tp2].hosts" in variables  # n9 is not defined
    # solo did not type, so its API port is unknown: no clash with the router is claimed.
    assert "sglfleet_router.port" not in variables


def test_privileged_port_allowed_when_the_inventory_says_so(tmp_path: Path) -> None:
    inv = broken.base()
    inv.group("solo")["port"] = 80
    inv.cluster["sglfleet_router"]["port"] = 443
    inv.cluster["sglfleet_allow_privileged_ports"] = True
    assert problems_of(broken.write(inv, tmp_path / "inv")) == []


def test_allow_privileged_ports_must_be_a_boolean(tmp_path: Path) -> None:
    inv = broken.base()
    inv.cluster["sglfleet_allow_privileged_ports"] = "yes please"
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert [p.variable for p in problems] == ["sglfleet_allow_privileged_ports"]


def test_revision_must_be_a_pinned_commit_for_hub_models(tmp_path: Path) -> None:
    inv = broken.base()
    inv.cluster["sglfleet_models"]["qwen3-8b"]["revision"] = "main"
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert_reported(
        problems,
        broken.Expect("sglfleet_models.qwen3-8b.revision", "'main' is not a commit", "40 hex"),
    )


def test_mirror_model_needs_an_absolute_mirror_path(tmp_path: Path) -> None:
    inv = broken.base()
    inv.cluster["sglfleet_models"]["qwen3-8b"] = {"hub": "mirror", "weights_gb": 16.4}
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert_reported(
        problems, broken.Expect("sglfleet_models.qwen3-8b.mirror_path", "absolute", "mirror_path")
    )


def test_server_args_values_are_checked_against_sglang_types(tmp_path: Path) -> None:
    inv = broken.base()
    inv.group("solo")["server_args"] = {"context_length": "long"}
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert_reported(
        problems,
        broken.Expect("sglfleet_serving_groups[solo].server_args.context_length", "'long'", "int"),
    )


def test_attention_dp_reserves_sglang_derived_ports(tmp_path: Path) -> None:
    inv = broken.base()
    inv.group("tp2")["attn_dp"] = 16
    inv.group("tp2")["port"] = 20003  # dist_init_port 20000 + 3: SGLang's metrics channel
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert_reported(
        problems,
        broken.Expect(
            "sglfleet_serving_groups[tp2].dist_init_port",
            "tp2 API and tp2 dist-init+3 (DP attention)",
            "own port",
            "n1",
        ),
    )


@pytest.mark.parametrize(
    "hosts_text",
    [
        "all: [n1, n2]\n",
        "all: just-a-string\n",
        "all:\n  children: [sglfleet_gpu_nodes]\n",
        "all:\n  children:\n    sglfleet_gpu_nodes:\n      hosts:\n        n1: 8\n",
        "all:\n  children:\n    sglfleet_gpu_nodes:\n      host:\n        n1:\n",
        "- n1\n- n2\n",
    ],
)
def test_malformed_hosts_yml_gives_problems_not_exceptions(tmp_path: Path, hosts_text: str) -> None:
    inv = broken.base()
    inv.hosts_text = hosts_text
    directory = broken.write(inv, tmp_path / "inv")
    with pytest.raises(InventoryError) as raised:
        load_inventory(directory)
    assert all(p.hint for p in raised.value.problems)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("sglfleet_serving_groups", "r1"),
        ("sglfleet_serving_groups", ["not-a-mapping"]),
        ("sglfleet_serving_groups", [{"model": "qwen3-8b", "hosts": "n3"}]),
        ("sglfleet_models", ["qwen3-8b"]),
        ("sglfleet_models", {"qwen3-8b": "Qwen/Qwen3-8B"}),
        ("sglfleet_router", "n3"),
        ("sglfleet_router", {"host": "n3", "policy": "fastest"}),
        ("sglfleet_engine", "vllm"),
        ("sglfleet_api_key", 12345),
    ],
)
def test_malformed_cluster_variables_give_problems_not_exceptions(
    tmp_path: Path, variable: str, value: object
) -> None:
    inv = broken.base()
    inv.cluster[variable] = value
    directory = broken.write(inv, tmp_path / "inv")
    try:
        problems = checks.problems(load_inventory(directory))
    except InventoryError as exc:
        problems = exc.problems
    if variable == "sglfleet_api_key":
        assert problems == []  # a number is a valid (if odd) key: kept as a secret string
        return
    assert problems
    assert any((p.variable or "").startswith(variable) for p in problems), problems


def test_secret_values_never_appear_in_problems(tmp_path: Path) -> None:
    inv = broken.base()
    inv.cluster["sglfleet_api_key"] = "sk-very-secret-value"
    inv.cluster["sglfleet_router"]["port"] = 30000
    problems = problems_of(broken.write(inv, tmp_path / "inv"))
    assert problems
    assert not any("sk-very-secret" in p.render() + p.hint for p in problems)


def test_readable_order_puts_cluster_problems_first_and_drops_repeats() -> None:
    a = Problem("a", "fix a", host="n2")
    b = Problem("b", "fix b")
    c = Problem("c", "fix c", host="n1")
    assert readable_order([a, b, c, a]) == [b, c, a]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_inventory_validates_cleanly(example: Path) -> None:
    assert problems_of(example) == []


@pytest.mark.parametrize(("nodes", "gpus"), [(1, 1), (2, 1), (3, 1), (4, 2)])
def test_lab_inventory_validates_cleanly(tmp_path: Path, nodes: int, gpus: int) -> None:
    lab = [LabNode(f"lab-{i}", f"sglfleet-lab-{i}", f"10.88.0.{10 + i}") for i in range(nodes)]
    hosts, cluster = lab_inventory_vars(lab, gpus)
    directory = tmp_path / "lab"
    (directory / "group_vars" / "all").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    (directory / "group_vars" / "all" / "cluster.yml").write_text(
        yaml.safe_dump(cluster, sort_keys=False)
    )
    assert problems_of(directory) == []


def test_run_plan_reports_the_same_problems(tmp_path: Path) -> None:
    """`ansible-playbook site.yml` run directly validates through the run's plan first."""
    from sglfleet.host_plan import inventory_plans

    ok = inventory_plans(broken.valid(tmp_path / "ok"))
    assert ok.problems == () and ok.hosts
    case = next(c for c in broken.CASES if c.name == "port_clash_api_vs_router")
    planned = inventory_plans(broken.build(case, tmp_path / "bad"))
    lines = list(planned.problems)
    assert len(lines) == 1 and planned.hosts == {}
    assert "host n3" in lines[0] and "sglfleet_router.port" in lines[0] and "fix:" in lines[0]
    assert planned.for_host("n3") == {
        "inventory_dir": planned.inventory_dir,
        "problems": lines,
        "launch": None,
    }
    too_large = next(c for c in broken.CASES if c.in_plan_only)
    lines = list(inventory_plans(broken.build(too_large, tmp_path / "big")).problems)
    assert any("DOES NOT FIT" in line for line in lines)


def test_the_same_model_in_two_groups_is_replicas_not_a_name_clash(tmp_path: Path) -> None:
    inv = broken.base()
    inv.hosts["n4"] = dict(inv.hosts["n3"], ansible_host="192.0.2.4")
    inv.hosts["n4"]["sglfleet_fabric_address"] = "10.20.0.4"
    models = inv.cluster["sglfleet_models"]
    models["qwen3-8b-copy"] = dict(models["qwen3-8b"], served_name="qwen3-8b")
    inv.cluster["sglfleet_serving_groups"].append(
        {"name": "more", "model": "qwen3-8b-copy", "hosts": ["n4"], "tp": 8}
    )
    directory = broken.write(inv, tmp_path / "inv")
    assert problems_of(directory) == []
