"""GPUDirect RDMA proven in NCCL's log: the bench's summary and the preflight's verdict.

The logs under tests/fixtures/nccl-logs/ are written in NCCL 2.30.7's INFO formats; the README
there names the NCCL source line behind each.
"""

from __future__ import annotations

import importlib.util
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sglfleet.preflight import nccl as preflight

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "roles" / "nccl_tuning" / "files" / "sglfleet-allreduce-bench"
LOGS = ROOT / "tests" / "fixtures" / "nccl-logs"
GIB = 1 << 30
IB = preflight.thresholds_from_variables({}, "NVIDIA H100 80GB HBM3", [400.0] * 8)
GROUP = preflight.Context(host="h100-a", scope="group", transport="infiniband")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    loader = SourceFileLoader("sglfleet_allreduce_bench_gdr", str(BENCH))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def group_result(log: dict[str, Any], busbw: float, peermem: bool = False) -> dict[str, Any]:
    return {
        "ok": True,
        "tool": "torch.distributed",
        "world_size": 16,
        "rows": [{"bytes": 4 * GIB, "time_us": 1.0, "algbw_gbps": busbw, "busbw_gbps": busbw}],
        "env": {},
        "nccl_log": log,
        "node": {"hostname": "h100-a", "peermem_loaded": peermem, "memlock": "unlimited"},
    }


def test_summary_of_a_dmabuf_run(bench: ModuleType) -> None:
    log = bench.summarize_nccl_log((LOGS / "ib-2x8-dmabuf-gdr.log").read_text())
    assert log["nccl_version"] == "2.30.7+cuda13.0"
    assert log["networks"] == ["IB"]
    assert log["dmabuf_gpus"] == [0]
    assert log["gdr_hcas"] == {"enabled": ["mlx5_0", "mlx5_3"], "disabled": []}
    assert log["gdr_in_use"] is True
    assert (log["net_channels"], log["net_channels_gdr"]) == (3, 3)


def test_dmabuf_run_passes_without_nvidia_peermem(bench: ModuleType) -> None:
    log = bench.summarize_nccl_log((LOGS / "ib-2x8-dmabuf-gdr.log").read_text())
    checks = {c.check: c for c in preflight.evaluate(group_result(log, 371.0), IB, GROUP)}
    assert checks["nccl.gdr"].status == "ok"
    assert "DMA-BUF" in checks["nccl.gdr"].observed
    assert "nccl.peermem" not in checks
    assert all(c.status == "ok" for c in checks.values())


def test_run_without_gdr_fails_the_group_even_with_peermem_loaded(bench: ModuleType) -> None:
    log = bench.summarize_nccl_log((LOGS / "ib-2x8-no-gdr.log").read_text())
    assert log["gdr_in_use"] is False and log["dmabuf_gpus"] == []
    assert log["gdr_hcas"]["disabled"] == ["mlx5_0", "mlx5_3"]
    for peermem in (False, True):
        checks = {
            c.check: c for c in preflight.evaluate(group_result(log, 22.0, peermem), IB, GROUP)
        }
        gdr = checks["nccl.gdr"]
        assert gdr.status == "fail"
        assert "NCCL disabled GDR for HCA mlx5_0, mlx5_3" in gdr.observed
        assert "rdma_network_gpudirect: dmabuf" in gdr.fix
        assert checks["nccl.busbw"].cause.startswith("GPUDirect RDMA off")


def test_gdr_fails_even_when_bandwidth_passes(bench: ModuleType) -> None:
    log = bench.summarize_nccl_log((LOGS / "ib-2x8-no-gdr.log").read_text())
    checks = {c.check: c for c in preflight.evaluate(group_result(log, 390.0), IB, GROUP)}
    assert checks["nccl.busbw"].status == "ok"
    assert checks["nccl.gdr"].status == "fail"


def test_partly_direct_channels_warn(bench: ModuleType) -> None:
    text = (LOGS / "ib-2x8-dmabuf-gdr.log").read_text()
    text += "h100-a:4242:4301 [0] NCCL INFO Channel 02/0 : 0[0] -> 8[0] [send] via NET/IB/1\n"
    log = bench.summarize_nccl_log(text)
    checks = {c.check: c for c in preflight.evaluate(group_result(log, 371.0), IB, GROUP)}
    assert checks["nccl.gdr"].status == "warn"
    assert checks["nccl.gdr"].observed.startswith("3 of 4 NET channels use GDRDMA")


def test_single_node_runs_are_not_judged_for_gdr(bench: ModuleType) -> None:
    log = bench.summarize_nccl_log((LOGS / "ib-2x8-no-gdr.log").read_text())
    node = preflight.Context(host="h100-a", scope="node", transport="infiniband")
    checks = preflight.evaluate(group_result(log, 371.0), IB, node)
    assert not [c for c in checks if c.check in ("nccl.gdr", "nccl.peermem")]


def test_discovered_gid_index_in_the_context_block_is_not_a_number() -> None:
    context = preflight.context_from_document(
        {"sglfleet": {"transport": "roce", "expected_gid_index": "discovered"}}
    )
    assert context.expected_gid_index is None
    assert (
        preflight.context_from_document(
            {"sglfleet": {"expected_gid_index": "3"}}
        ).expected_gid_index
        == 3
    )
