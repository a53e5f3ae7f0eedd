"""roles/rdma_network/files/sglfleet-rdma-discover against fixture sysfs trees of real layouts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "rdma_network" / "files" / "sglfleet-rdma-discover"
FIXTURES = ROOT / "tests" / "fixtures" / "sysfs"
IB_COMPUTE = ["mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"]


def _load(name: str, path: Path) -> ModuleType:
    loader = SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def discover() -> ModuleType:
    return _load("sglfleet_rdma_discover", SCRIPT)


def run(discover: ModuleType, tree: Path, *extra: str, ip_json: bool = True) -> dict[str, Any]:
    argv = ["--sysfs-root", str(tree), *extra]
    if ip_json:
        argv += ["--ip-json", str(tree / "ip-addr.json")]
    parser_args = _parse(argv)
    result: dict[str, Any] = discover.discover(parser_args)
    return result


def _parse(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--sysfs-root", default="/sys")
    parser.add_argument("--ip-json", default="")
    parser.add_argument("--transport", default="infiniband")
    parser.add_argument("--min-rate-gbps", type=float, default=100.0)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--management-interface", action="append", default=[])
    parser.add_argument("--fabric-address", default="")
    return parser.parse_args(argv)


def test_ib_hgx_selects_the_eight_ndr_hcas_and_excludes_the_management_nic(
    discover: ModuleType,
) -> None:
    found = run(discover, FIXTURES / "ib-hgx-h100")
    assert len(found["hca_names"]) == 10
    selected = found["selected"]
    assert selected["hcas"] == IB_COMPUTE
    assert {e["hca"] for e in selected["excluded"]} == {"mlx5_1", "mlx5_2"}
    assert all("link layer Ethernet" in e["reason"] for e in selected["excluded"])
    assert selected["rate_gbps_total"] == 8 * 400
    assert selected["gid_index"] is None
    port = next(h for h in found["hcas"] if h["name"] == "mlx5_0")["ports"][0]
    assert port["state"] == "ACTIVE" and port["rate_gbps"] == 400.0
    assert port["link_layer"] == "InfiniBand"
    assert next(h for h in found["hcas"] if h["name"] == "mlx5_0")["netdevs"] == ["ibp24s0"]


def test_roce_finds_gid_index_3_and_drops_the_25g_management_nic(discover: ModuleType) -> None:
    found = run(discover, FIXTURES / "roce-h100", "--transport", "roce")
    selected = found["selected"]
    assert selected["hcas"] == [f"mlx5_{i}" for i in range(8)]
    assert selected["gid_index"] == 3
    assert not selected["gid_index_conflict"]
    assert selected["excluded"] == [{"hca": "mlx5_8", "reason": "rate 25 Gb/s below 100 Gb/s"}]
    mlx5_0 = next(p for p in selected["ports"] if p["hca"] == "mlx5_0")
    assert (mlx5_0["ipv4"], mlx5_0["ndev"]) == ("10.30.0.21", "enp24s0np0")


def test_management_interface_is_excluded_even_when_fast(discover: ModuleType) -> None:
    found = run(
        discover,
        FIXTURES / "roce-h100",
        "--transport",
        "roce",
        "--management-interface",
        "enp64s0np0",
        "--exclude",
        "mlx5_7",
    )
    selected = found["selected"]
    assert "mlx5_1" not in selected["hcas"] and "mlx5_7" not in selected["hcas"]
    reasons = {e["hca"]: e["reason"] for e in selected["excluded"]}
    assert reasons["mlx5_1"] == "management interface enp64s0np0"
    assert reasons["mlx5_7"] == "listed in rdma_network_exclude_hcas"


def _copy(tree: str, tmp_path: Path) -> Path:
    target = tmp_path / tree
    shutil.copytree(FIXTURES / tree, target)
    return target


def test_a_down_port_is_excluded_with_its_state(discover: ModuleType, tmp_path: Path) -> None:
    tree = _copy("ib-hgx-h100", tmp_path)
    port = tree / "class/infiniband/mlx5_4/ports/1"
    (port / "state").write_text("1: DOWN\n")
    (port / "phys_state").write_text("2: Polling\n")
    selected = run(discover, tree)["selected"]
    assert "mlx5_4" not in selected["hcas"]
    assert {"hca": "mlx5_4", "reason": "port 1 is DOWN (POLLING)"} in selected["excluded"]


def test_gid_index_conflict_is_reported(discover: ModuleType, tmp_path: Path) -> None:
    tree = _copy("roce-h100", tmp_path)
    gids = tree / "class/infiniband/mlx5_5/ports/1"
    # An IPv6 global address took slots 2/3, the IPv4 moved to 4/5.
    for index in (4, 5):
        (gids / f"gids/{index}").write_text((gids / f"gids/{index - 2}").read_text())
        (gids / f"gid_attrs/types/{index}").write_text(
            (gids / f"gid_attrs/types/{index - 2}").read_text()
        )
        (gids / f"gid_attrs/ndevs/{index}").write_text(
            (gids / f"gid_attrs/ndevs/{index - 2}").read_text()
        )
    (gids / "gids/2").write_text("2001:0db8:0000:0000:0000:0000:0000:0021\n")
    (gids / "gids/3").write_text("2001:0db8:0000:0000:0000:0000:0000:0021\n")
    selected = run(discover, tree, "--transport", "roce")["selected"]
    assert selected["gid_index_conflict"] is True
    assert selected["gid_index"] is None
    assert selected["gid_index_by_hca"]["mlx5_5"] == 5
    assert selected["gid_index_by_hca"]["mlx5_0"] == 3


def test_roce_port_without_ipv4_is_not_selected(discover: ModuleType, tmp_path: Path) -> None:
    tree = _copy("roce-h100", tmp_path)
    port = tree / "class/infiniband/mlx5_2/ports/1"
    for index in (2, 3):
        (port / f"gids/{index}").write_text("0000:0000:0000:0000:0000:0000:0000:0000\n")
        (port / f"gid_attrs/types/{index}").unlink()
    selected = run(discover, tree, "--transport", "roce")["selected"]
    assert "mlx5_2" not in selected["hcas"]
    assert selected["gid_index"] == 3


def test_without_address_list_the_gid_ipv4_is_trusted(discover: ModuleType) -> None:
    selected = run(discover, FIXTURES / "roce-h100", "--transport", "roce", ip_json=False)[
        "selected"
    ]
    # `ip` on this machine knows none of the fixture's interfaces: the GID table decides.
    assert selected["gid_index"] == 3


def test_parsers(discover: ModuleType) -> None:
    assert discover.parse_rate_gbps("400 Gb/sec (4X NDR)") == 400.0
    assert discover.parse_rate_gbps("25 Gb/sec (1X EDR)") == 25.0
    assert discover.parse_rate_gbps(None) is None
    assert discover.parse_state("4: ACTIVE") == "ACTIVE"
    assert discover.gid_ipv4("0000:0000:0000:0000:0000:ffff:0a1e:0015") == "10.30.0.21"
    assert discover.gid_ipv4("fe80:0000:0000:0000:a088:c203:0000:0029") is None
    assert discover.natural_key("mlx5_10") > discover.natural_key("mlx5_9")


def test_script_prints_json(tmp_path: Path) -> None:
    tree = FIXTURES / "roce-h100"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--sysfs-root", str(tree), "--transport", "roce"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    document = json.loads(out)
    assert document["schema"] == "sglfleet.rdma-discovery/1"
    assert document["selected"]["gid_index"] == 3


def test_fixture_trees_match_their_generator(tmp_path: Path) -> None:
    generator = _load("make_fixtures", FIXTURES / "make_fixtures.py")
    generator.HERE = tmp_path
    generator.ib_hgx_h100()
    generator.roce_h100()
    for tree in ("ib-hgx-h100", "roce-h100"):
        fresh = sorted(p.relative_to(tmp_path / tree) for p in (tmp_path / tree).rglob("*"))
        kept = sorted(p.relative_to(FIXTURES / tree) for p in (FIXTURES / tree).rglob("*"))
        assert fresh == kept
        for rel in fresh:
            if (tmp_path / tree / rel).is_file():
                assert (tmp_path / tree / rel).read_text() == (FIXTURES / tree / rel).read_text()
