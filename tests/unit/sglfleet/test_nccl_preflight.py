"""sglfleet.preflight.nccl verdicts and the bench's log/table parsers.

Rows marked "measured" are copied from the nvidia-h200-x2 device run recorded in docs/fabric.md;
the InfiniBand log lines follow NCCL 2.x's INFO format (no InfiniBand machine was available).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sglfleet.hardware import line_rate as gpu_line_rate
from sglfleet.preflight import nccl as preflight
from sglfleet.ui.preflight import bandwidth_table

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "roles" / "nccl_tuning" / "files" / "sglfleet-allreduce-bench"
GIB, MIB = 1 << 30, 1 << 20

# measured: 2x H200 NV18, NCCL 2.28.9, bf16 (bench run of docs/fabric.md)
GOOD_ROWS = [(1 * MIB, 43.24), (64 * MIB, 271.37), (1 * GIB, 329.06), (4 * GIB, 346.84)]
# measured: same machine, NCCL_P2P_DISABLE=1 (SHM through host memory)
P2P_OFF_ROWS = [(1 * MIB, 16.57), (64 * MIB, 28.28), (1 * GIB, 28.40), (4 * GIB, 28.73)]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    loader = SourceFileLoader("sglfleet_allreduce_bench", str(BENCH))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def result(
    rows: list[tuple[int, float]],
    *,
    ok: bool = True,
    env: dict[str, str] | None = None,
    log: dict[str, Any] | None = None,
    node: dict[str, Any] | None = None,
    world: int = 2,
    error: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ok": ok,
        "tool": "torch.distributed",
        "world_size": world,
        "nccl_version": "2.28.9",
        "rows": [
            {"bytes": b, "time_us": b / bw / 1e3, "algbw_gbps": bw, "busbw_gbps": bw}
            for b, bw in rows
        ],
        "env": {"NCCL_NVLS_ENABLE": "0", **(env or {})},
        "nccl_log": {"transports": {"P2P/CUMEM": 48}, "networks": ["Socket"], **(log or {})},
        "node": {
            "hostname": "gpu-1",
            "peermem_loaded": False,
            "memlock": "unlimited",
            "dev_shm_bytes": 256 * GIB,
            **(node or {}),
        },
    }
    if error:
        doc["error"] = error
    return doc


def by_name(checks: list[preflight.Check]) -> dict[str, preflight.Check]:
    return {c.check: c for c in checks}


H200 = preflight.thresholds_from_variables({}, "NVIDIA H200")


def test_healthy_nvlink_run_passes() -> None:
    checks = by_name(preflight.evaluate(result(GOOD_ROWS), H200, preflight.Context(host="gpu-1")))
    assert checks["nccl.run"].status == "ok"
    assert checks["nccl.busbw"].status == "ok"
    assert "346.8 GB/s = 77% of 450 GB/s" in checks["nccl.busbw"].observed
    assert all(c.status != "fail" for c in checks.values())


def test_p2p_off_fails_and_names_the_cause() -> None:
    doc = result(
        P2P_OFF_ROWS,
        env={"NCCL_P2P_DISABLE": "1"},
        log={"transports": {"SHM/direct/direct": 8}},
    )
    check = by_name(preflight.evaluate(doc, H200, preflight.Context(host="gpu-1")))["nccl.busbw"]
    assert check.status == "fail"
    assert check.cause.startswith("NVLink P2P is off: NCCL_P2P_DISABLE=1 is set")
    assert "SHM/direct/direct" in check.cause
    assert "NCCL_P2P_DISABLE" in check.fix


def test_slow_run_with_no_p2p_transport_is_blamed_on_the_path_not_the_variable() -> None:
    doc = result(P2P_OFF_ROWS, log={"transports": {"NET/Socket/0": 8}})
    check = by_name(preflight.evaluate(doc, H200, preflight.Context()))["nccl.busbw"]
    assert check.status == "fail"
    assert "NCCL chose no P2P path" in check.cause


def test_bogus_socket_interface_fails_the_run_with_wrong_interface() -> None:
    doc = result(
        [],
        ok=False,
        env={"NCCL_SOCKET_IFNAME": "bogus0"},
        log={"no_socket_interface": True, "transports": {}},
        error="worker failed: ncclInvalidUsage / Last error: Bootstrap : no socket interface found",
    )
    checks = preflight.evaluate(doc, H200, preflight.Context(host="gpu-1"))
    assert [c.check for c in checks] == ["nccl.run"]
    assert checks[0].status == "fail"
    assert checks[0].cause.startswith("wrong interface: NCCL_SOCKET_IFNAME=bogus0")
    assert "sglfleet_fabric_interface" in checks[0].fix


def test_bootstrap_on_another_interface_is_named() -> None:
    doc = result(GOOD_ROWS, log={"bootstrap_interfaces": ["eth0"]})
    context = preflight.Context(scope="node", expected_socket_ifname="=ibp24s0")
    checks = by_name(preflight.evaluate(doc, H200, context))
    assert checks["nccl.config"].status == "warn"
    assert (
        "NCCL bootstrapped over eth0, the inventory expects ibp24s0" in checks["nccl.config"].cause
    )


IB = preflight.thresholds_from_variables({}, "H100-SXM5-80GB", [400.0] * 8)
GROUP = preflight.Context(host="h100-a", scope="group", transport="infiniband")


def test_fabric_line_rate_is_the_sum_of_the_hcas() -> None:
    assert IB.fabric_gbps == 400.0
    assert preflight.line_rate(IB, "group") == (400.0, "8 HCA ports, 3200 Gb/s = 400 GB/s")
    assert preflight.line_rate(IB, "node")[0] == 450.0


def test_gdr_off_across_nodes_is_judged_from_nccls_channels() -> None:
    doc = result(
        [(1 * GIB, 21.0), (4 * GIB, 22.0)],
        world=16,
        log={
            "networks": ["IB"],
            "transports": {"NET/IB/0": 16, "P2P/CUMEM": 96},
            "gdr_in_use": False,
        },
    )
    checks = by_name(preflight.evaluate(doc, IB, GROUP))
    assert checks["nccl.busbw"].status == "fail"
    assert checks["nccl.busbw"].cause.startswith("GPUDirect RDMA off: NCCL's network channels")
    assert checks["nccl.gdr"].status == "fail"
    assert "nccl.peermem" not in checks  # a module's presence proves nothing either way


def test_gdr_on_across_nodes_passes() -> None:
    doc = result(
        [(1 * GIB, 330.0), (4 * GIB, 371.0)],
        world=16,
        log={
            "networks": ["IB"],
            "transports": {"NET/IB/0/GDRDMA": 16, "P2P/CUMEM": 96},
            "gdr_in_use": True,
        },
        node={"peermem_loaded": True},
    )
    checks = by_name(preflight.evaluate(doc, IB, GROUP))
    assert {c.status for c in checks.values()} == {"ok"}


def test_socket_fallback_and_down_port_are_named() -> None:
    doc = result([(4 * GIB, 11.0)], world=16, log={"networks": ["Socket"], "transports": {}})
    context = preflight.Context(
        host="h100-a",
        scope="group",
        transport="infiniband",
        expected_hcas=("mlx5_0", "mlx5_3"),
        ports=(
            preflight.Port("mlx5_0", 1, "ACTIVE", "InfiniBand", 400.0),
            preflight.Port("mlx5_3", 1, "DOWN", "InfiniBand", 400.0),
            preflight.Port("mlx5_1", 1, "DOWN", "Ethernet", 100.0),
        ),
    )
    check = by_name(preflight.evaluate(doc, IB, context))["nccl.busbw"]
    assert check.status == "fail"
    assert "port down: mlx5_3/1 is DOWN" in check.cause
    assert "mlx5_1" not in check.cause
    assert "NCCL fell back to TCP sockets" in check.cause


def test_roce_gid_mismatch_is_named() -> None:
    doc = result(
        [(4 * GIB, 30.0)],
        world=16,
        env={"NCCL_IB_GID_INDEX": "1"},
        log={"networks": ["IB"], "transports": {"NET/IB/0/GDRDMA": 16}, "gdr_in_use": True},
        node={"peermem_loaded": True},
    )
    context = preflight.Context(scope="group", transport="roce", expected_gid_index=3)
    check = by_name(preflight.evaluate(doc, IB, context))["nccl.busbw"]
    assert check.cause.startswith("GID mismatch: NCCL used GID index 1")


def test_nvlink_errors_are_named() -> None:
    nvlink = {
        "available": True,
        "gpus": [
            {"index": 0, "links": [{"link": 0, "active": False}, {"link": 1, "active": True}]}
        ],
        "error_counter_total": 12,
    }
    doc = result([(4 * GIB, 120.0)], node={"nvlink": nvlink})
    check = by_name(preflight.evaluate(doc, H200, preflight.Context()))["nccl.busbw"]
    assert check.cause.startswith("NVLink errors: 1 inactive links, 12 replay/recovery/CRC")


def test_small_dev_shm_fails_and_limited_memlock_warns() -> None:
    doc = result(GOOD_ROWS, node={"dev_shm_bytes": 64 * MIB, "memlock": "65536"})
    context = preflight.Context(transport="roce", simulated=True)
    checks = by_name(preflight.evaluate(doc, H200, context))
    assert checks["nccl.dev_shm"].status == "fail"
    assert checks["nccl.memlock"].status == "warn"
    assert checks["nccl.gdr"].status == "skip"


def test_thresholds_from_variables_override_line_rates() -> None:
    t = preflight.thresholds_from_variables(
        {
            "nccl_tuning_preflight_min_fraction": 0.9,
            "nccl_tuning_preflight_nvlink_gbps": "400",
            "nccl_tuning_preflight_large_message_mb": 1024,
        },
        "NVIDIA H200",
    )
    assert (t.nvlink_gbps, t.min_fraction, t.large_message_bytes) == (400.0, 0.9, GIB)
    check = by_name(preflight.evaluate(result(GOOD_ROWS), t, preflight.Context()))["nccl.busbw"]
    assert check.status == "fail"  # 346.8 < 0.9 x 400
    assert gpu_line_rate("L40S-48GB")[0] == 32.0
    assert gpu_line_rate("Mystery GPU")[0] is None


def test_table_summary_and_reference_comparison() -> None:
    good = result(GOOD_ROWS)
    rows = preflight.table(good, 450.0)
    assert [r.size for r in rows] == ["1M", "64M", "1G", "4G"]
    assert rows[-1].fraction_of_line_rate == pytest.approx(0.771, abs=1e-3)
    assert "4G" in bandwidth_table(asdict(r) for r in rows)
    checks = preflight.evaluate(good, H200, preflight.Context(host="gpu-1"))
    summary = preflight.summary(good, checks, H200, preflight.Context(host="gpu-1"))
    assert summary["ok"] is True and summary["peak_busbw_gbps"] == 346.84
    assert summary["fraction_of_line_rate"] == pytest.approx(0.7708, abs=1e-4)
    reference = result([(4 * GIB, 349.12)])
    comparison = preflight.compare_to_reference(good, reference, 64 * MIB)
    assert comparison["within_10_percent"] is True
    slow = preflight.compare_to_reference(result(P2P_OFF_ROWS), reference, 64 * MIB)
    assert slow["within_10_percent"] is False


# ---- the bench script's own parsers ------------------------------------------------------------

# measured: lines of NCCL 2.28.9's INFO log on the nvidia-h200-x2 machine
H200_LOG = """\
vm:1209:1209 [0] NCCL INFO NCCL version 2.28.9+cuda13.0
vm:1209:1209 [0] NCCL INFO Bootstrap: Using eth0:192.0.2.2<0>
vm:1209:1209 [0] NCCL INFO NCCL_NVLS_ENABLE set by environment to 0.
vm:1209:1209 [0] NCCL INFO Using network Socket
vm:1209:1209 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM
vm:1209:1209 [0] NCCL INFO Channel 01/0 : 0[0] -> 1[1] via P2P/CUMEM
vm:1109:1109 [0] NCCL INFO Channel 00 : 0[0] -> 1[1] via SHM/direct/direct
[2026-11-22 10:17:31] vm:989:989 [0] bootstrap.cc:114 NCCL WARN Bootstrap : no socket interface found
"""  # noqa: E501

# format of NCCL 2.x INFO lines on an InfiniBand host with GPUDirect RDMA
IB_LOG = """\
h100-a:4242:4242 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB ; OOB ibp24s0:10.20.0.11<0>
h100-a:4242:4242 [0] NCCL INFO Using network IB
h100-a:4242:4242 [0] NCCL INFO Channel 00/0 : 8[0] -> 0[0] [receive] via NET/IB/0/GDRDMA
h100-a:4242:4242 [0] NCCL INFO Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/0/GDRDMA
"""  # noqa: E501


def test_nccl_log_summary(bench: ModuleType) -> None:
    summary = bench.summarize_nccl_log(H200_LOG)
    assert summary["nccl_version"] == "2.28.9+cuda13.0"
    assert summary["bootstrap_interfaces"] == ["eth0"]
    assert summary["transports"] == {"P2P/CUMEM": 2, "SHM/direct/direct": 1}
    assert summary["networks"] == ["Socket"]
    assert summary["no_socket_interface"] is True
    assert summary["gdr_in_use"] is False
    assert summary["warnings"] == ["NCCL WARN Bootstrap : no socket interface found"]
    ib = bench.summarize_nccl_log(IB_LOG)
    assert ib["networks"] == ["IB"]
    assert ib["gdr_in_use"] is True
    assert ib["transports"] == {"NET/IB/0/GDRDMA": 2}


def test_all_reduce_perf_table(bench: ModuleType) -> None:
    # nccl-tests' all_reduce_perf layout (out-of-place columns first, then in-place)
    text = """\
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
     1048576        524288  bfloat16     sum      -1    30.12   34.81   34.81      0    29.90   35.07   35.07      0
  4294967296    2147483648  bfloat16     sum      -1  12290.1  349.46  349.46      0  12280.3  349.74  349.74      0
# Avg bus bandwidth    : 192.1
"""  # noqa: E501
    rows = bench.parse_all_reduce_perf(text, 2)
    assert [r["bytes"] for r in rows] == [1048576, 4294967296]
    assert rows[1]["busbw_gbps"] == 349.46 and rows[1]["wrong"] == "0"


def test_sizes_and_env_file(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.parse_size("64M") == 64 * MIB and bench.parse_size("4G") == 4 * GIB
    assert bench.message_sizes(MIB, 4 * GIB, 4)[-1] == 4 * GIB
    env_file = tmp_path / "nccl.env"
    env_file.write_text('# comment\nNCCL_IB_HCA==mlx5_0,mlx5_3\nGLOO_SOCKET_IFNAME="ibp24s0"\n\n')
    assert bench.read_env_file(str(env_file)) == {
        "NCCL_IB_HCA": "=mlx5_0,mlx5_3",
        "GLOO_SOCKET_IFNAME": "ibp24s0",
    }
    assert bench.read_env_file(str(tmp_path / "missing")) == {}


def test_judge_reads_the_playbooks_context_block() -> None:
    doc = result(
        [(4 * GIB, 21.0)],
        world=16,
        log={"networks": ["IB"], "transports": {"NET/IB/0": 16}, "gdr_in_use": False},
    )
    doc["sglfleet"] = {
        "host": "h100-a",
        "scope": "group",
        "transport": "infiniband",
        "expected_socket_ifname": "ibp24s0",
        "expected_hcas": ["mlx5_0", "mlx5_3"],
        "expected_gid_index": None,
        "simulated": False,
        "gpu_model": "H100-SXM5-80GB",
        "ports": [
            {
                "hca": "mlx5_0",
                "port": 1,
                "state": "ACTIVE",
                "link_layer": "InfiniBand",
                "rate_gbps": 400,
            },
            {
                "hca": "mlx5_3",
                "port": 1,
                "state": "ACTIVE",
                "link_layer": "InfiniBand",
                "rate_gbps": 400,
            },
            {
                "hca": "mlx5_1",
                "port": 1,
                "state": "ACTIVE",
                "link_layer": "Ethernet",
                "rate_gbps": 100,
            },
        ],
    }
    checks, summary = preflight.judge(doc, {"nccl_tuning_preflight_min_fraction": 0.5})
    assert (
        summary["line_rate_gbps"] == 100.0
    )  # 2 x 400 Gb/s declared HCAs, management NIC not counted
    assert summary["ok"] is False
    assert any(c.startswith("GPUDirect RDMA off") for c in summary["causes"])
    assert by_name(checks)["nccl.gdr"].status == "fail"
    skipped, skipped_summary = preflight.judge(
        {"ok": False, "rows": [], "skipped": "simulated GPU host", "sglfleet": {"host": "lab-1"}},
        {},
    )
    assert [(c.check, c.status) for c in skipped] == [("nccl.run", "skip")]
    assert skipped_summary["ok"] is True
