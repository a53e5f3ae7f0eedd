"""GPU preflight: raw nvidia-smi data of known nodes judged against their inventory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.inventory import load_inventory
from sglfleet.preflight.gpu import (
    XID_CATALOG,
    Check,
    ExpectedNode,
    evaluate,
    expected_for_host,
    model_matches,
    parse_gpus,
    parse_nvlink,
    parse_xids,
    summarize,
)
from sglfleet.preflight.run import gpu_checks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"
ROOT = Path(__file__).resolve().parents[3]

H100_NODE = ExpectedNode(
    host="h100-a",
    gpu_count=8,
    gpu_model="H100-SXM5-80GB",
    gpu_memory_gb=80.0,
    driver_branch="580",
    driver_version=None,
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.check: c for c in checks}


def test_healthy_hgx_h100_passes_every_check() -> None:
    checks = evaluate(load("hgx-h100x8-healthy"), H100_NODE)
    statuses = {c.check: c.status for c in checks}
    assert statuses == {
        "gpu_count": "ok",
        "gpu_model": "ok",
        "gpu_memory": "ok",
        "driver_version": "ok",
        "persistence_mode": "ok",
        "ecc_mode": "ok",
        "ecc_uncorrectable_errors": "ok",
        "remapped_rows": "ok",
        "pcie_link": "ok",
        "fabric_manager": "ok",
        "nvlink": "ok",
        "xid_errors": "ok",
    }
    assert all(c.fix == "" for c in checks)
    assert summarize(checks)["failed"] == 0


def test_parse_gpus_reads_the_fields_the_checks_need() -> None:
    driver, gpus = parse_gpus(load("hgx-h100x8-healthy")["nvidia_smi"]["xml"])
    assert driver == "580.95.05"
    assert len(gpus) == 8
    first = gpus[0]
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.memory_mib == 81559
    assert (first.pcie_gen_max, first.pcie_width_max) == (5, 16)
    assert first.fabric_state == "Completed"
    assert first.ecc_uncorrectable_volatile == 0


def test_degraded_pcie_width_fails_and_names_the_gpu() -> None:
    check = by_name(evaluate(load("hgx-h100x8-pcie-degraded"), H100_NODE))["pcie_link"]
    assert check.status == "fail"
    assert "GPU5" in check.observed
    assert "x8/x16" in check.observed
    assert "reseat" in check.fix


def test_lower_pcie_gen_alone_is_only_a_warning() -> None:
    raw = load("hgx-h100x8-healthy")
    raw["nvidia_smi"]["xml"] = raw["nvidia_smi"]["xml"].replace(
        "<current_link_gen>5</current_link_gen>", "<current_link_gen>1</current_link_gen>", 1
    )
    check = by_name(evaluate(raw, H100_NODE))["pcie_link"]
    assert check.status == "warn"
    assert "GPU0 gen 1/5" in check.observed


def test_xid_79_fails_with_its_meaning_and_fix() -> None:
    check = by_name(evaluate(load("hgx-h100x8-xid79"), H100_NODE))["xid_errors"]
    assert check.status == "fail"
    assert "Xid 79" in check.observed
    assert "fallen off the bus" in check.observed
    assert "0000:9a:00" in check.observed
    assert "power-cycle" in check.fix


def test_driver_outside_the_pinned_branch_fails() -> None:
    checks = evaluate(load("hgx-h100x8-driver-mismatch"), H100_NODE)
    check = by_name(checks)["driver_version"]
    assert check.status == "fail"
    assert check.observed == "570.172.08"
    assert check.expected == "branch 580.x"
    assert "node_stack.yml" in check.fix
    assert summarize(checks)["failed"] == 1


def test_exact_driver_pin_must_match_exactly() -> None:
    raw = load("hgx-h100x8-healthy")
    pinned = ExpectedNode(**{**H100_NODE.__dict__, "driver_version": "580.105.08"})
    assert by_name(evaluate(raw, pinned))["driver_version"].status == "fail"
    same = ExpectedNode(**{**H100_NODE.__dict__, "driver_version": "580.95.05"})
    assert by_name(evaluate(raw, same))["driver_version"].status == "ok"


def test_faulty_node_reports_each_fault() -> None:
    checks = by_name(evaluate(load("hgx-h100x8-faults"), H100_NODE))
    assert checks["persistence_mode"].status == "warn"
    assert "GPU2" in checks["persistence_mode"].observed
    assert checks["ecc_uncorrectable_errors"].status == "fail"
    assert "GPU2=2" in checks["ecc_uncorrectable_errors"].observed
    assert checks["remapped_rows"].status == "fail"
    assert checks["fabric_manager"].status == "fail"
    assert "In Progress" in checks["fabric_manager"].observed
    assert checks["nvlink"].status == "fail"
    assert "GPU3 links 4,5" in checks["nvlink"].observed
    xid = checks["xid_errors"]
    assert xid.status == "fail"
    assert "Xid 74" in xid.observed and "Xid 94" in xid.observed
    assert "NVLink" in xid.observed


def test_count_model_and_memory_against_the_inventory() -> None:
    raw = load("hgx-h100x8-healthy")
    wrong = ExpectedNode(
        host="h100-a",
        gpu_count=4,
        gpu_model="H200-SXM-141GB",
        gpu_memory_gb=141.0,
        driver_branch="580",
        driver_version=None,
    )
    checks = by_name(evaluate(raw, wrong))
    assert checks["gpu_count"].status == "fail"
    assert checks["gpu_model"].status == "fail"
    assert checks["gpu_memory"].status == "fail"
    assert "79.6 GiB" in checks["gpu_memory"].observed


@pytest.mark.parametrize(
    ("expected", "observed", "matches"),
    [
        ("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", True),
        ("H200-SXM-141GB", "NVIDIA H200", True),
        ("L40S-48GB", "NVIDIA L40S", True),
        ("H100-NVL-94GB", "NVIDIA H100 NVL", True),
        ("H100-SXM5-80GB", "NVIDIA H100 NVL", False),
        ("H100-SXM5-80GB", "NVIDIA H200", False),
        ("H100-PCIe-80GB", "NVIDIA H100 PCIe", True),
    ],
)
def test_model_matching(expected: str, observed: str, matches: bool) -> None:
    assert model_matches(expected, observed) is matches


def test_nvidia_smi_failure_is_one_clear_failure() -> None:
    raw = {
        "host": "h100-a",
        "simulated": False,
        "nvidia_smi": {
            "rc": 9,
            "xml": "",
            "stderr": "NVIDIA-SMI has failed because it couldn't communicate with the driver.",
        },
        "kernel_log": {"source": "dmesg", "lines": []},
        "xid_window_hours": "since boot",
    }
    checks = evaluate(raw, H100_NODE)
    assert checks[0].check == "nvidia_smi"
    assert checks[0].status == "fail"
    assert "communicate with the driver" in checks[0].observed
    assert checks[1].check == "xid_errors"


def test_simulated_node_is_skipped_visibly() -> None:
    checks = evaluate({"host": "lab-1", "simulated": True}, H100_NODE)
    assert [(c.check, c.status) for c in checks] == [("gpu", "skip")]
    assert "simulated" in checks[0].observed


def test_no_nvswitch_skips_fabric_manager() -> None:
    raw = load("hgx-h100x8-healthy")
    raw["nvswitch_pci_ids"] = []
    raw["nvidia_smi"]["xml"] = (
        raw["nvidia_smi"]["xml"]
        .replace("<state>Completed</state>", "<state>N/A</state>")
        .replace("<status>Success</status>", "<status>N/A</status>")
    )
    raw["nvlink"]["stdout"] = ""
    checks = by_name(evaluate(raw, H100_NODE))
    assert checks["fabric_manager"].status == "skip"
    assert "no NVSwitch" in checks["fabric_manager"].observed
    assert checks["nvlink"].status == "skip"


def test_parse_nvlink_and_xids() -> None:
    links = parse_nvlink(
        "GPU 0: NVIDIA H200 (UUID: GPU-1)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>"
    )
    assert links == {0: {0: "26.562 GB/s", 1: "<inactive>"}}
    line = "kernel: NVRM: Xid (PCI:0000:18:00): 119, pid=1, GSP RPC timeout"
    assert parse_xids([line, "other"]) == [("0000:18:00", 119, line)]


def test_every_named_xid_has_meaning_and_fix() -> None:
    for xid in (13, 31, 43, 45, 48, 63, 64, 74, 79, 92, 94, 95, 119):
        meaning, status, fix = XID_CATALOG[xid]
        assert meaning and fix
        assert status in ("warn", "fail")


def test_summarize_shape() -> None:
    checks = evaluate(load("hgx-h100x8-driver-mismatch"), H100_NODE)
    summary = summarize(checks)
    assert summary["failed"] == 1
    assert [n["host"] for n in summary["nodes"]] == ["h100-a"]
    first = summary["nodes"][0]["checks"][0]
    assert set(first) == {"check", "status", "observed", "expected", "fix"}


def test_expected_for_host_reads_inventory_and_driver_pin(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    sglfleet_gpu_nodes:\n      hosts:\n"
        "        gpu-1:\n          sglfleet_gpu_count: 8\n"
        "          sglfleet_gpu_model: H100-SXM5-80GB\n"
        '          nvidia_driver_version: "580.95.05"\n',
        encoding="utf-8",
    )
    inventory = load_inventory(tmp_path, root=ROOT)
    expected = expected_for_host(inventory, "gpu-1")
    assert expected.gpu_count == 8
    assert expected.gpu_model == "H100-SXM5-80GB"
    assert expected.gpu_memory_gb == 80.0
    assert expected.driver_branch == "580"  # the nvidia_driver role's default
    assert expected.driver_version == "580.95.05"


def test_real_capture_of_two_h200_passes_and_a_wrong_pin_fails() -> None:
    """h200x2-device.json was collected by gpu_preflight.yml on the device tool's 2x H200 VM."""
    raw = load("h200x2-device")
    node = ExpectedNode("device-h200x2", 2, "H200-SXM-141GB", 141.0, "580", None)
    checks = by_name(evaluate(raw, node))
    assert {c.status for c in checks.values()} == {"ok"}
    assert checks["nvlink"].observed == "36 links active on 2 GPUs"
    assert checks["xid_errors"].observed == "none since boot"
    pinned = ExpectedNode("device-h200x2", 2, "H200-SXM-141GB", 141.0, "580", "580.95.05")
    failed = [c for c in evaluate(raw, pinned) if c.status == "fail"]
    assert [(c.check, c.observed, c.expected) for c in failed] == [
        ("driver_version", "580.159.04", "580.95.05")
    ]


def test_real_capture_of_one_h200_says_why_nvlink_is_skipped() -> None:
    """The 1-GPU device machine's `nvidia-smi -q -x` and empty `nvlink -s` (metal capture)."""
    metal = ROOT / "tests" / "fixtures" / "metal" / "h200-ubuntu2404"
    raw = load("h200x2-device")
    raw["nvidia_smi"] = {"rc": 0, "xml": (metal / "nvidia-smi-q.xml").read_text(), "stderr": ""}
    raw["nvlink"] = {"rc": 0, "stdout": (metal / "nvidia-smi-nvlink-s").read_text()}
    node = ExpectedNode("device-h200x1", 1, "H200-SXM-141GB", 141.0, "580", None)
    checks = by_name(evaluate(raw, node))
    assert checks["gpu_count"].status == "ok"
    assert checks["driver_version"].observed == "580.159.04"
    assert checks["nvlink"].status == "skip"
    assert checks["nvlink"].observed == "no NVLink reported (one GPU: no NVLink peer)"
    assert not [c for c in checks.values() if c.status == "fail"]


def _this_machine_as_a_simulated_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An inventory of one simulated 8-GPU node reached over the local connection."""
    inventory = tmp_path / "inv"
    inventory.mkdir()
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "sglfleet_gpu_count": 8,
        "sglfleet_gpu_model": "H100-SXM5-80GB",
        "sglfleet_simulated_gpus": True,
    }
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"sglfleet_gpu_nodes": {"hosts": {"gpu-1": host}}}}})
    )
    monkeypatch.setenv("SGLFLEET_HOME", str(tmp_path / "home"))
    return inventory


def test_sglfleet_reads_each_nodes_data_from_the_runs_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real playbook through sglfleet's runner against this machine as a simulated GPU node:
    the node's data comes back in the run's events (no folder on the controller) and is judged."""
    inventory = _this_machine_as_a_simulated_node(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    (check,) = gpu_checks(inventory, None)
    assert (check.host, check.status) == ("gpu-1", "skip")
    assert "simulated" in check.observed
    assert not list(tmp_path.glob("**/gpu-1.json"))


def test_the_cli_renders_what_the_service_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sglfleet preflight`: the service returns the document, the CLI prints it (table or JSON)."""
    from typer.testing import CliRunner

    from sglfleet.cli.app import app

    inventory = _this_machine_as_a_simulated_node(tmp_path, monkeypatch)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    as_json = runner.invoke(app, ["preflight", "-i", str(inventory), "--json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["failed"] == 0
    assert document["nodes"][0]["checks"][0]["status"] == "skip"
    table = runner.invoke(app, ["preflight", "-i", str(inventory)])
    assert table.exit_code == 0, table.output
    assert "GPU preflight" in table.stdout and "SKIP" in table.stdout
    assert "All preflight checks passed" in table.stdout
