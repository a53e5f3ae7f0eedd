"""roles/nccl_tuning writes the plan's NCCL/Gloo values as given and adds only what the host knows.

One owner per value (issue 15): src/sglfleet/nccl.py derives everything the inventory determines;
the role receives it as `nccl_tuning_planned_env`. Here the real role runs (ansible-playbook, local
connection) with the plan of example inventories and rdma_network's discovery of fixture sysfs
trees, and the files it writes are compared with the plan.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.inventory import load_inventory
from sglfleet.launch import launch_table
from sglfleet.nccl import HOST_DERIVED, TUNING_VARIABLES
from sglfleet.topology import plan, plan_json

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "nccl_tuning"
EXAMPLE = ROOT / "inventories" / "examples" / "deepseek-r1-2x8-h100"
MOLECULE_INVENTORY = ROOT / "molecule" / "fabric" / "sglfleet-inventory"
DISCOVER = ROOT / "roles" / "rdma_network" / "files" / "sglfleet-rdma-discover"
SYSFS = ROOT / "tests" / "fixtures" / "sysfs"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# Rank 0 of molecule/fabric's group; only its route is looked up, nothing is sent to it.
RANK0_ADDRESS = "10.20.0.11"


def _nodes(inventory: Path) -> dict[str, dict[str, Any]]:
    """Each serving host's launch record: what reaches it as sglfleet_plan.launch."""
    loaded = load_inventory(inventory)
    records = launch_table(loaded)
    shown = plan_json(plan(loaded))
    # `sglfleet plan --json` shows what the node gets.
    for node in (n for g in shown["serving_groups"] for n in g["nodes"]):
        assert records[node["host"]]["nccl_env"] == node["nccl_env"]
    return records


def _discovery(tree: str, transport: str, fabric_address: str) -> dict[str, Any]:
    root = SYSFS / tree
    argv = [sys.executable, str(DISCOVER), "--sysfs-root", str(root)]
    argv += ["--ip-json", str(root / "ip-addr.json"), "--transport", transport]
    argv += ["--fabric-address", fabric_address]
    result: dict[str, Any] = json.loads(
        subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    )
    return result


def _role_inputs(discovery: dict[str, Any], transport: str) -> dict[str, Any]:
    """What playbooks/fabric.yml maps from rdma_network's discovery fact."""
    return {
        "nccl_tuning_transport": transport,
        "nccl_tuning_discovered_hcas": discovery["selected"]["hcas"],
        "nccl_tuning_available_hcas": discovery["hca_names"],
        "nccl_tuning_available_interfaces": list(discovery["netdevs"]),
        "nccl_tuning_discovered_gid_index": discovery["selected"].get("gid_index"),
    }


def _lines(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]", line)]
    return {key: value for key, value in pairs}


def _managed_block(text: str) -> dict[str, str]:
    block = text.split("# BEGIN sglfleet managed", 1)[1].split("# END sglfleet managed", 1)[0]
    return _lines(block)


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the role once for every case; each host's files land in its own folder."""
    work = tmp_path_factory.mktemp("nccl-role")
    example = _nodes(EXAMPLE)
    molecule = _nodes(MOLECULE_INVENTORY)
    ib = _role_inputs(_discovery("ib-hgx-h100", "infiniband", "10.20.0.11"), "infiniband")
    roce = _role_inputs(_discovery("roce-h100", "roce", "10.30.0.21"), "roce")
    cases: dict[str, dict[str, Any]] = {}
    for name, node in example.items():
        # Every value declared: the plan is the whole file.
        cases[name] = {**ib, "nccl_tuning_planned_env": node["nccl_env"]}
    # Nothing declared on the RoCE node: interface, HCAs and (asked for) GID come from the host.
    cases["roce-undeclared"] = {
        **roce,
        "nccl_tuning_planned_env": molecule["fabric-roce"]["nccl_env"],
        "nccl_tuning_rank0_address": RANK0_ADDRESS,
        "nccl_tuning_ib_gid_index": "discovered",
    }
    # The plan's keys win over what the host would have filled in.
    cases["plan-wins"] = {
        **roce,
        "nccl_tuning_planned_env": {
            "NCCL_IB_HCA": "=mlx5_0:1",
            "NCCL_IB_GID_INDEX": "5",
            "NCCL_DEBUG": "INFO",
            "GLOO_SOCKET_IFNAME": "enp24s0np0",
            "NCCL_SOCKET_IFNAME": "=enp24s0np0",
        },
        "nccl_tuning_rank0_address": RANK0_ADDRESS,
        "nccl_tuning_ib_gid_index": "discovered",
    }
    hosts: dict[str, Any] = {}
    for name, variables in cases.items():
        folder = work / name
        hosts[name] = {
            **variables,
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "nccl_tuning_conf_path": str(folder / "nccl.conf"),
            "nccl_tuning_env_file": str(folder / "sglfleet" / "nccl.env"),
            "nccl_tuning_bench_install": False,
        }
    (work / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    (work / "play.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The real role, as playbooks/fabric.yml runs it",
                    "hosts": "all",
                    "gather_facts": True,
                    "roles": [{"role": "nccl_tuning"}],
                }
            ]
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        # The plan is passed above, computed in this process; no vars plugin plans this inventory.
        "ANSIBLE_VARS_ENABLED": "ansible.builtin.host_group_vars",
        "ANSIBLE_CACHE_PLUGIN": "memory",
        "ANSIBLE_FORKS": "4",
        "ANSIBLE_GATHER_SUBSET": "!all,min,network",
    }
    run = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(work / "hosts.yml"), str(work / "play.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    out: dict[str, dict[str, Any]] = {}
    for name, variables in cases.items():
        folder = work / name
        out[name] = {
            "planned": variables["nccl_tuning_planned_env"],
            "env": _lines((folder / "sglfleet" / "nccl.env").read_text(encoding="utf-8")),
            "conf": _managed_block((folder / "nccl.conf").read_text(encoding="utf-8")),
            "discovered_hcas": variables["nccl_tuning_discovered_hcas"],
        }
    return out


def test_every_rank_of_the_2x8_example_gets_exactly_the_plans_values(
    converged: dict[str, dict[str, Any]],
) -> None:
    ranks = [name for name in converged if name not in ("roce-undeclared", "plan-wins")]
    assert len(ranks) == 2
    for name in ranks:
        case = converged[name]
        assert case["env"] == case["planned"], name
        assert case["conf"] == {k: v for k, v in case["planned"].items() if k.startswith("NCCL_")}
        assert case["env"]["NCCL_IB_QPS_PER_CONNECTION"] == "8"
        assert case["env"]["GLOO_SOCKET_IFNAME"] == "ibp24s0"


def test_role_adds_only_host_keys_the_plan_left_unset(converged: dict[str, dict[str, Any]]) -> None:
    case = converged["roce-undeclared"]
    planned, env = case["planned"], case["env"]
    # The plan carries the tuning values; the role adds none of them.
    assert planned["NCCL_IB_TIMEOUT"] == "22" and planned["NCCL_DEBUG"] == "WARN"
    assert not set(planned) & set(HOST_DERIVED)
    assert {k: env[k] for k in planned} == planned
    assert set(env) - set(planned) == set(HOST_DERIVED)
    assert env["NCCL_IB_HCA"] == "=" + ",".join(case["discovered_hcas"])
    assert env["NCCL_IB_GID_INDEX"] == "3"
    route = subprocess.run(
        ["ip", "-j", "-4", "route", "get", RANK0_ADDRESS],
        check=True,
        capture_output=True,
        text=True,
    )
    interface = json.loads(route.stdout)[0]["dev"]
    assert env["GLOO_SOCKET_IFNAME"] == interface
    assert env["NCCL_SOCKET_IFNAME"] == "=" + interface
    assert case["conf"] == {k: v for k, v in env.items() if k.startswith("NCCL_")}


def test_planned_values_win_over_what_the_host_would_fill_in(
    converged: dict[str, dict[str, Any]],
) -> None:
    case = converged["plan-wins"]
    assert case["env"] == case["planned"]


def test_the_role_and_the_planner_name_the_same_host_derived_keys() -> None:
    constants = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert constants["_nccl_tuning_host_derived"] == list(HOST_DERIVED)


def test_the_roles_tasks_and_templates_never_read_planner_inputs() -> None:
    """A planner input read by the role's Jinja would be a second derivation of its value."""
    planner_inputs = [*TUNING_VARIABLES, "nccl_tuning_extra_env"]
    files = [*sorted((ROLE / "tasks").glob("*.yml")), *sorted((ROLE / "templates").rglob("*.j2"))]
    files.append(ROLE / "vars" / "main.yml")
    assert len(files) >= 6
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        for variable in planner_inputs:
            assert variable not in text, f"{path.relative_to(ROOT)} reads {variable}"
    # Every planner input stays a documented default: the inventory loader's bottom layer.
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert set(planner_inputs) <= set(defaults)
