"""GPUDirect RDMA, DOCA and nccl.conf decisions (sglfleet.gpudirect, .nccl) on captured data.

`h200-ubuntu2404` is what a real H200 host showed (tests/fixtures/metal/README.md); the
`written-*` folders are hand-written variants, each with a WRITTEN.md naming its sources.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from sglfleet.gpudirect import (
    dkms_missing,
    dkms_status,
    doca_repository,
    gpudirect_plan,
    kallsyms_names,
    module_flavour,
)
from sglfleet.nccl import CONF_BEGIN, merge_nccl_conf

ROOT = Path(__file__).resolve().parents[3]
METAL = ROOT / "tests" / "fixtures" / "metal"


def read(folder: str, name: str) -> str:
    return (METAL / folder / name).read_text()


def release(folder: str) -> str:
    return read(folder, "uname").split()[2]


def plan_for(folder: str, mode: str = "dmabuf", stack: str = "inbox", **kw: object):  # type: ignore[no-untyped-def]
    dkms = METAL / folder / "dkms-status"
    return gpudirect_plan(
        mode,
        stack,
        str(kw.get("kallsyms", read(folder, "kallsyms-rdma-gpu"))),
        release(folder),
        read(folder, "proc-driver-nvidia-version"),
        dkms.read_text() if dkms.exists() else "",
        bool(kw.get("reboot_pending", False)),
    )


def test_real_h200_host_does_dmabuf_and_has_no_peer_memory_api() -> None:
    symbols = kallsyms_names(read("h200-ubuntu2404", "kallsyms-rdma-gpu"))
    assert "ib_umem_dmabuf_get" in symbols
    assert "ib_register_peer_memory_client" not in symbols
    assert module_flavour(read("h200-ubuntu2404", "proc-driver-nvidia-version")) == "open"
    plan = plan_for("h200-ubuntu2404")
    assert plan.mechanism == "dmabuf"
    assert plan.problems == [] and plan.pending == []
    assert not plan.load_peermem
    assert plan.evidence["driver_version"] == "580.159.04"
    assert plan.evidence["kernel"] == "6.18.44-fc-v657-gpu"


def test_peermem_on_the_real_inbox_host_is_refused_with_the_reason() -> None:
    plan = plan_for("h200-ubuntu2404", mode="peermem", stack="inbox")
    assert not plan.load_peermem
    assert any("-EINVAL" in p for p in plan.problems)


def test_peermem_on_doca_without_a_dkms_driver_is_refused() -> None:
    # The real host's driver comes from an image: nothing DKMS could rebuild against DOCA.
    plan = plan_for("h200-ubuntu2404", mode="peermem", stack="doca")
    assert not plan.load_peermem
    assert any("DKMS" in p for p in plan.problems)


def test_doca_host_loads_peermem_once_docas_ib_core_runs() -> None:
    plan = plan_for("written-doca-peermem", mode="peermem", stack="doca")
    assert plan.problems == [] and plan.pending == []
    assert plan.load_peermem and plan.rebuild_nvidia_dkms
    assert plan.evidence["peer_memory_symbols"] is True
    assert plan.evidence["nvidia_dkms"] == ["nvidia/570.172.08"]


def test_doca_host_before_the_reboot_rebuilds_and_waits_for_the_gated_reboot() -> None:
    before = read("written-doca-peermem", "kallsyms-rdma-gpu-before-reboot")
    plan = plan_for("written-doca-peermem", mode="peermem", stack="doca", kallsyms=before)
    assert plan.problems == []
    assert plan.rebuild_nvidia_dkms and not plan.load_peermem
    assert plan.pending and "reboot" in plan.pending[0]


def test_doca_host_can_also_use_dmabuf() -> None:
    assert plan_for("written-doca-peermem", mode="dmabuf", stack="doca").problems == []


def test_proprietary_modules_cannot_do_dmabuf() -> None:
    assert module_flavour(read("written-proprietary-modules", "proc-driver-nvidia-version")) == (
        "proprietary"
    )
    plan = plan_for("written-proprietary-modules")
    assert [p for p in plan.problems if "open kernel modules" in p]
    assert plan.evidence["driver_version"] == "550.127.05"


def test_old_kernel_cannot_do_dmabuf() -> None:
    plan = plan_for("written-old-kernel")
    assert any("5.12" in p for p in plan.problems)
    assert any("ib_umem_dmabuf_get" in p for p in plan.problems)


def test_driver_not_loaded_is_pending_only_while_a_reboot_is() -> None:
    kallsyms = read("h200-ubuntu2404", "kallsyms-rdma-gpu")
    waiting = gpudirect_plan("dmabuf", "inbox", kallsyms, "6.8.0-49-generic", "", "", True)
    assert waiting.pending and not waiting.problems
    broken = gpudirect_plan("dmabuf", "inbox", kallsyms, "6.8.0-49-generic", "", "", False)
    assert broken.problems and "not loaded" in broken.problems[0]


def test_off_and_unknown_modes() -> None:
    assert gpudirect_plan("off", "inbox", "", "", "").problems == []
    assert gpudirect_plan("gdr", "inbox", "", "", "").problems


def test_dkms_status_both_formats_and_missing_modules() -> None:
    text = (
        read("written-doca-peermem", "dkms-status")
        + "nvidia, 535.1, 5.15.0-1-generic, x86_64: built\n"
    )
    rows = dkms_status(text)
    assert [r.name for r in rows] == ["mlnx-ofed-kernel", "nvidia", "nvidia"]
    assert rows[2].version == "535.1" and rows[2].state == "built"
    assert dkms_missing(text, ["nvidia", "mlnx-ofed-kernel"], "5.15.0-126-generic") == []
    assert dkms_missing(text, ["nvidia"], "6.8.0-49-generic") == ["nvidia"]


@pytest.mark.parametrize(
    ("distribution", "version", "arch", "label", "folder"),
    [
        ("Ubuntu", "24.04", "x86_64", "ubuntu24.04", "x86_64"),
        ("Ubuntu", "22.04", "aarch64", "ubuntu22.04", "arm64-sbsa"),
        ("Debian", "12.7", "x86_64", "debian12", "x86_64"),
    ],
)
def test_doca_repository_folder(
    distribution: str, version: str, arch: str, label: str, folder: str
) -> None:
    repo = doca_repository("https://example.invalid/doca/", "2.9.1", distribution, version, arch)
    assert repo["url"] == f"https://example.invalid/doca/2.9.1/{label}/{folder}/"


def test_doca_repository_explicit_labels_and_unknowns() -> None:
    repo = doca_repository("u", "2.9.1", "Debian", "12.7", "x86_64", os_label="debian12.5")
    assert repo["url"] == "u/2.9.1/debian12.5/x86_64/"
    with pytest.raises(ValueError, match="architecture"):
        doca_repository("u", "2.9.1", "Ubuntu", "24.04", "ppc64le")
    with pytest.raises(ValueError, match="Rocky"):
        doca_repository("u", "2.9.1", "Rocky", "9.4", "x86_64")


MANAGED = {"NCCL_IB_TIMEOUT": "22", "NCCL_IB_HCA": "=mlx5_0", "NCCL_DEBUG": "WARN"}
HEADER = "#\n# Ansible managed\n#"


def test_nccl_conf_merge_keeps_the_users_keys_and_managed_keys_win() -> None:
    user = read("written-nccl-conf-nvls", "nccl.conf.user")
    merged = merge_nccl_conf(user, MANAGED, HEADER)
    text = merged["content"]
    assert merged["kept"] == ["NCCL_NVLS_ENABLE", "NCCL_CROSS_NIC"]
    assert merged["overridden"] == {"NCCL_IB_TIMEOUT": "18"}
    assert "NCCL_NVLS_ENABLE=0" in text and "NCCL_CROSS_NIC=1" in text
    assert "# site policy: multicast is unsafe on this fabric" in text
    assert "NCCL_IB_TIMEOUT=22" in text and "NCCL_IB_TIMEOUT=18" not in text
    # idempotent: merging its own output changes nothing
    again = merge_nccl_conf(text, MANAGED, HEADER)
    assert again["content"] == text
    assert again["kept"] == ["NCCL_NVLS_ENABLE", "NCCL_CROSS_NIC"]
    assert again["overridden"] == {}


def test_nccl_conf_merge_of_the_real_image_file_and_of_no_file() -> None:
    merged = merge_nccl_conf(read("written-nccl-conf-nvls", "nccl.conf"), MANAGED, HEADER)
    assert merged["content"].rstrip().endswith("NCCL_NVLS_ENABLE=0")
    fresh = merge_nccl_conf("", MANAGED, HEADER)
    assert fresh["kept"] == [] and fresh["content"].startswith(CONF_BEGIN)


def test_nccl_conf_merge_keeps_the_captured_2gpu_image_file() -> None:
    """/etc/nccl.conf as captured on the 2x H200 machine (2026-11-30): three multicast-off keys."""
    captured = read("h200x2-ubuntu2404", "nccl-conf")
    image_file = "".join(line + "\n" for line in captured.splitlines() if "=" in line)
    assert image_file.count("\n") == 3
    merged = merge_nccl_conf(image_file, MANAGED, HEADER)
    assert merged["kept"] == [
        "NCCL_NVLS_ENABLE",
        "TORCH_SYMM_MEM_DISABLE_MULTICAST",
        "NVSHMEM_DISABLE_NVLS",
    ]
    assert merged["overridden"] == {}
    for line in image_file.splitlines():
        assert line in merged["content"]
    assert merge_nccl_conf(merged["content"], MANAGED, HEADER)["content"] == merged["content"]


def test_nccl_conf_written_by_an_older_sglfleet_is_replaced_not_kept() -> None:
    legacy = "#\n# Ansible managed\n#\nNCCL_IB_GID_INDEX=3\nNCCL_IB_TIMEOUT=22\n"
    merged = merge_nccl_conf(legacy, MANAGED, HEADER)
    assert merged["replaced_legacy"] and merged["kept"] == []
    assert "NCCL_IB_GID_INDEX" not in merged["content"]


def load_filters() -> ModuleType:
    path = ROOT / "plugins" / "filter" / "sglfleet_rdma.py"
    spec = importlib.util.spec_from_file_location("sglfleet_rdma_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filters_take_registered_results() -> None:
    filters = load_filters().FilterModule().filters()
    plan = filters["sglfleet_gpudirect_plan"](
        "dmabuf",
        "inbox",
        {"stdout": read("h200-ubuntu2404", "kallsyms-rdma-gpu")},
        release("h200-ubuntu2404"),
        read("h200-ubuntu2404", "proc-driver-nvidia-version"),
    )
    assert plan["mechanism"] == "dmabuf" and plan["problems"] == []
    repo = filters["sglfleet_doca_repository"]("b", "2.9.1", "Ubuntu", "24.04", "aarch64")
    assert repo["arch_label"] == "arm64-sbsa"
    merged = filters["sglfleet_nccl_conf_merge"]("", {"NCCL_IB_TIMEOUT": 22}, "")
    assert "NCCL_IB_TIMEOUT=22" in merged["content"]
