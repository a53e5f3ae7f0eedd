"""CUDA toolkit, DCGM and fabric manager decisions, against the metal captures and the inventory."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet import gpu_stack
from sglfleet.inventory import load_inventory
from sglfleet_sglang import SGLANG_VERSION

ROOT = Path(__file__).resolve().parents[3]
METAL = ROOT / "tests" / "fixtures" / "metal"
H200 = METAL / "h200-ubuntu2404"
HGX = METAL / "written-hgx-h100x8-nvswitch"
EXAMPLE = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import sglfleet_gpu_stack as filters  # noqa: E402


def _defaults(role: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    assert isinstance(data, dict)
    return data


def _module_version(capture: Path) -> str:
    """What /sys/module/nvidia/version holds, from the capture's sys-module-versions."""
    for line in (capture / "sys-module-versions").read_text().splitlines():
        name, _, version = line.partition(" ")
        if name == "nvidia":
            return version + "\n"
    return ""


# --- CUDA: one table, the captured host, the pinned SGLang ---------------------------------------


def test_branch_580_supports_cuda_13_0_as_the_captured_h200_reports() -> None:
    smi = (H200 / "nvidia-smi-q.xml").read_text()
    driver = re.search(r"<driver_version>([^<]+)<", smi)
    cuda = re.search(r"<cuda_version>([^<]+)<", smi)
    assert driver and cuda
    branch = gpu_stack.driver_branch_of(driver.group(1))
    assert branch == 580
    assert gpu_stack.newest_cuda_for_branch(branch) == cuda.group(1) == "13.0"


def test_the_captured_hosts_toolkit_is_the_one_sglang_needs() -> None:
    installed = (H200 / "dpkg-query-nvidia").read_text()
    needed = gpu_stack.cuda_required_by_sglang(SGLANG_VERSION)
    assert needed == "13.0"
    assert f"cuda-nvcc-{needed.replace('.', '-')}\t" in installed
    assert gpu_stack.cuda_toolkit_problems(needed, 580, SGLANG_VERSION) == []


def test_sglang_table_matches_the_recorded_wheel_metadata() -> None:
    record = ROOT / "tests" / "fixtures" / "wheels" / f"sglang-{SGLANG_VERSION}.json"
    if not record.exists():
        pytest.skip(f"{record.name} not recorded (tools/record_wheels.py writes it)")
    requires = json.loads(record.read_text())["requires_dist"]
    needed = gpu_stack.cuda_required_by_sglang(SGLANG_VERSION)
    assert needed is not None
    major = needed.split(".")[0]
    assert any(r.replace(" ", "").startswith(f"cuda-python>={major}") for r in requires)
    assert any(f"[cu{major}]" in r for r in requires if r.startswith("flashinfer"))


def test_the_role_default_toolkit_is_the_pinned_sglangs() -> None:
    default = _defaults("cuda_toolkit")["cuda_toolkit_version"]
    assert default == gpu_stack.cuda_required_by_sglang(SGLANG_VERSION)
    assert gpu_stack.cuda_toolkit_problems(default, "580", SGLANG_VERSION) == []


@pytest.mark.parametrize(
    ("version", "branch", "variable", "words"),
    [
        ("12.9", "580", "cuda_toolkit_version", "SGLang 0.5.23 is built on CUDA 13.0"),
        ("13.1", "580", "nvidia_driver_branch", "needs driver branch 590"),
        ("13.0", "575", "nvidia_driver_branch", "newest CUDA it supports: 12.9"),
        ("11.8", "580", "cuda_toolkit_version", "not a known toolkit"),
    ],
)
def test_mismatches_name_the_variable_and_the_fix(
    version: str, branch: str, variable: str, words: str
) -> None:
    problems = gpu_stack.cuda_toolkit_problems(version, branch, "0.5.23")
    assert any(var == variable and words in message for var, message, _ in problems), problems
    lines = filters.sglfleet_cuda_toolkit_problems(version, branch, "0.5.23")
    assert lines and all(". Fix: " in line for line in lines)


def test_a_newer_toolkit_of_the_same_major_is_accepted() -> None:
    assert gpu_stack.cuda_toolkit_problems("13.1", "590", "0.5.23") == []
    assert gpu_stack.cuda_toolkit_problems("12.9", "580", None) == []  # no SGLang check


# --- plan time: `sglfleet plan` exits 2 before any host is touched --------------------------------


def _inventory_with(tmp_path: Path, gpu_vars: dict[str, Any]) -> Path:
    target = tmp_path / "inv"
    shutil.copytree(EXAMPLE, target)
    group_vars = target / "group_vars" / "sglfleet_gpu_nodes"
    group_vars.mkdir(parents=True, exist_ok=True)
    (group_vars / "gpu_stack.yml").write_text(yaml.safe_dump(gpu_vars))
    return target


def _plan_problems(directory: Path) -> list[str]:
    from sglfleet import checks

    return [f"{p.render()} || {p.hint}" for p in checks.problems(load_inventory(directory))]


def test_the_example_inventory_plans_with_the_defaults() -> None:
    inv = load_inventory(EXAMPLE)
    assert gpu_stack.gpu_stack_checks(inv) == []


def test_plan_refuses_a_cuda_12_toolkit_for_sglang_on_cuda_13(tmp_path: Path) -> None:
    directory = _inventory_with(tmp_path, {"cuda_toolkit_version": "12.9"})
    problems = _plan_problems(directory)
    hosts = {p.split("]")[0] for p in problems if "cuda_toolkit_version" in p}
    assert len(hosts) == 4  # every GPU node, each named
    assert any('set cuda_toolkit_version to "13.0"' in p for p in problems)
    run = subprocess.run(
        [sys.executable, "-m", "sglfleet", "plan", "-i", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cuda_toolkit_version" in run.stdout + run.stderr


def test_plan_refuses_a_driver_branch_too_old_for_the_toolkit(tmp_path: Path) -> None:
    problems = _plan_problems(_inventory_with(tmp_path, {"nvidia_driver_branch": "575"}))
    assert any(
        "variable nvidia_driver_branch" in p and "CUDA 13.0 needs driver branch 580" in p
        for p in problems
    )
    assert any("datacenter-gpu-manager-4-cuda13" in p for p in problems)


# --- DCGM ---------------------------------------------------------------------------------------


def test_dcgm_defaults_carry_the_profiling_module_and_converge_without_a_url() -> None:
    defaults = _defaults("dcgm")
    assert "datacenter-gpu-manager-4-proprietary" in defaults["dcgm_packages"]
    assert "datacenter-gpu-manager-4-proprietary-cuda13" in defaults["dcgm_packages"]
    assert any(row[0].startswith("DCGM_FI_PROF_") for row in defaults["dcgm_exporter_counters"])
    assert defaults["dcgm_exporter_url"] == ""
    assert gpu_stack.dcgm_exporter_source(defaults["dcgm_exporter_source"], "") == "package"
    assert gpu_stack.dcgm_problems(defaults, "580") == []


def test_a_fresh_init_inventory_plans(tmp_path: Path) -> None:
    from sglfleet.scaffold import scaffold

    target = tmp_path / "fresh"
    scaffold("single-node", target)
    inv = load_inventory(target)
    assert gpu_stack.gpu_stack_checks(inv) == []


def test_exporter_source_auto_follows_the_url() -> None:
    assert gpu_stack.dcgm_exporter_source("auto", "https://mirror/dcgm-exporter") == "url"
    assert gpu_stack.dcgm_exporter_source("auto", "") == "package"
    assert gpu_stack.dcgm_exporter_source("package", "https://mirror/x") == "package"


def test_plan_refuses_an_exporter_url_without_checksum(tmp_path: Path) -> None:
    problems = _plan_problems(
        _inventory_with(tmp_path, {"dcgm_exporter_url": "https://mirror/dcgm-exporter"})
    )
    assert any("variable dcgm_exporter_checksum" in p for p in problems)
    problems = _plan_problems(_inventory_with(tmp_path / "b", {"dcgm_exporter_source": "url"}))
    assert any("variable dcgm_exporter_url" in p and "(empty)" in p for p in problems)


def test_a_disabled_exporter_needs_nothing() -> None:
    settings = {**_defaults("dcgm"), "dcgm_exporter_enabled": False, "dcgm_exporter_source": "url"}
    assert gpu_stack.dcgm_problems(settings, "580") == []


def test_apt_candidate_reads_apt_cache_policy() -> None:
    present = (
        "datacenter-gpu-manager-exporter:\n  Installed: (none)\n  Candidate: 4.5.0-1\n"
        "  Version table:\n     4.5.0-1 600\n        600 https://developer.download.nvidia.com/"
        "compute/cuda/repos/ubuntu2404/x86_64  Packages\n"
    )
    absent = "datacenter-gpu-manager-exporter:\n  Installed: (none)\n  Candidate: (none)\n"
    assert filters.sglfleet_apt_candidate(present) == "4.5.0-1"
    assert filters.sglfleet_apt_candidate(absent) == ""
    assert filters.sglfleet_apt_candidate("") == ""  # apt knows no such package: no output


# --- fabric manager -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distribution", "branch", "source", "expected"),
    [
        ("Ubuntu", 570, "nvidia_repo", ["nvidia-fabricmanager-570", "libnvidia-nscq-570"]),
        ("Ubuntu", 580, "nvidia_repo", ["nvidia-fabricmanager", "libnvidia-nscq"]),
        ("Ubuntu", 590, "nvidia_repo", ["nvidia-fabricmanager", "libnvidia-nscq"]),
        ("Ubuntu", 580, "distribution", ["nvidia-fabricmanager-580", "libnvidia-nscq-580"]),
        ("Ubuntu", 590, "distribution", ["nvidia-fabricmanager-590", "libnvidia-nscq-590"]),
        ("Debian", 570, "nvidia_repo", ["nvidia-fabricmanager", "libnvidia-nscq"]),
        ("Debian", 590, "nvidia_repo", ["nvidia-fabricmanager", "libnvidia-nscq"]),
    ],
)
def test_fabric_manager_package_names_by_branch_and_source(
    distribution: str, branch: int, source: str, expected: list[str]
) -> None:
    assert gpu_stack.fabric_manager_packages(distribution, branch, source) == expected


def test_fabric_manager_specs_take_the_drivers_exact_version() -> None:
    specs = gpu_stack.fabric_manager_package_specs("Ubuntu", "580.95.05")
    assert specs == ["nvidia-fabricmanager=580.95.05-*", "libnvidia-nscq=580.95.05-*"]
    pattern = specs[0].split("=", 1)[1]
    for revision in ("1", "1ubuntu1", "0ubuntu1", "0ubuntu0.24.04.2"):  # any packaging revision
        assert fnmatch.fnmatch(f"580.95.05-{revision}", pattern)
    assert not fnmatch.fnmatch("580.105.08-1", pattern)
    assert not fnmatch.fnmatch("580.95.050-1", pattern)
    with pytest.raises(ValueError):
        gpu_stack.fabric_manager_package_specs("Ubuntu", "")


def test_the_driver_pin_keeps_ubuntus_fabric_manager_away() -> None:
    """With NVIDIA's repository, the driver role refuses the distribution's nvidia-* packages."""
    data = yaml.safe_load((ROOT / "roles/nvidia_driver/vars/main.yml").read_text())
    patterns = data["_nvidia_driver_pin_patterns"]
    for name in gpu_stack.fabric_manager_packages("Ubuntu", 590):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
    assert "o=Ubuntu" in data["_nvidia_driver_pin_refused_releases"]["nvidia_repo"]


def _nvswitch_ids() -> list[str]:
    data = yaml.safe_load((ROOT / "roles/fabric_manager/vars/main.yml").read_text())
    return [i for ids in data["_fabric_manager_nvswitch_ids"].values() for i in ids]


def test_no_nvswitch_on_the_captured_h200() -> None:
    lines = (H200 / "pci-devices").read_text().splitlines()
    assert any(" 0x10de 0x2335 " in line for line in lines)  # the GPU is there
    assert gpu_stack.nvswitch_functions(lines, _nvswitch_ids()) == []


def test_four_nvswitches_on_the_written_hgx_board() -> None:
    lines = (HGX / "pci-devices").read_text().splitlines()
    found = gpu_stack.nvswitch_functions(lines, _nvswitch_ids())
    assert found == ["10de:22a3"] * 4
    # The role's own probe prints vendor:device without 0x; both forms are read.
    probe = [f"{line.split()[1][2:]}:{line.split()[2][2:]}" for line in lines]
    assert gpu_stack.nvswitch_functions(probe, _nvswitch_ids()) == found


# --- the start gate of nv-hostengine and the fabric manager (skipped on simulated hosts) --------


def test_loaded_version_from_both_captured_sources() -> None:
    assert gpu_stack.loaded_driver_version(_module_version(H200)) == "580.159.04"
    proc = (H200 / "proc-driver-nvidia-version").read_text()
    assert gpu_stack.loaded_driver_version(proc) == "580.159.04"
    assert gpu_stack.loaded_driver_version("") == ""


def test_gate_starts_on_the_captured_host_with_its_driver_loaded() -> None:
    gate = filters.sglfleet_gpu_service_gate(_module_version(H200), "580.159.04", [], False)
    assert gate == {"start": True, "reason": "driver 580.159.04 is loaded"}
    assert filters.sglfleet_gpu_service_gate(_module_version(H200))["start"]  # any version


def test_gate_waits_while_the_driver_reboot_is_pending() -> None:
    loaded = _module_version(HGX)
    markers = ["/var/lib/sglfleet/reboot-required/nvidia_driver"]
    gate = filters.sglfleet_gpu_service_gate(loaded, "580.95.05", markers, False)
    assert not gate["start"] and "nvidia_driver" in gate["reason"]
    upgraded = filters.sglfleet_gpu_service_gate(loaded, "580.105.08", [], False)
    assert not upgraded["start"] and "580.95.05" in upgraded["reason"]


def test_gate_without_a_driver_or_on_a_simulated_host() -> None:
    assert "no NVIDIA kernel module" in filters.sglfleet_gpu_service_gate("", "")["reason"]
    simulated = filters.sglfleet_gpu_service_gate(_module_version(H200), "", [], True)
    assert not simulated["start"] and "simulated" in simulated["reason"]


# --- the fabric state the fabric manager role waits for (skipped on simulated hosts) -----------


def test_fabric_state_of_the_captured_h200_is_not_applicable() -> None:
    smi = (H200 / "nvidia-smi-q.xml").read_text()
    assert gpu_stack.fabric_states(smi) == ["N/A"]
    assert not gpu_stack.fabric_ready(smi)


def test_fabric_ready_only_when_every_gpu_completed() -> None:
    assert gpu_stack.fabric_states((HGX / "nvidia-smi-q.xml").read_text()) == ["Completed"] * 8
    assert gpu_stack.fabric_ready((HGX / "nvidia-smi-q.xml").read_text())
    in_progress = (HGX / "nvidia-smi-q-in-progress.xml").read_text()
    assert gpu_stack.fabric_states(in_progress).count("In Progress") == 1
    assert not gpu_stack.fabric_ready(in_progress)
    assert not gpu_stack.fabric_ready("")  # nvidia-smi gave nothing


@pytest.mark.parametrize("role", ["cuda_toolkit", "dcgm", "fabric_manager"])
def test_every_default_is_documented_in_argument_specs(role: str) -> None:
    defaults = _defaults(role)
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert name.startswith(role + "_")
        if "default" in options[name]:
            assert options[name]["default"] == value, name


# --- the drop-in on NVIDIA's packaged exporter unit ---------------------------------------------

# The directives of NVIDIA's packaged unit (dcgm-exporter's packaging/config-files/systemd), with
# ExecStart pointing at a binary that exists here so that verify checks the rest.
VENDOR_EXPORTER_UNIT = """[Unit]
Description=NVIDIA DCGM-exporter service
Wants=nvidia-dcgm.service
After=nvidia-dcgm.service

[Service]
User=root
PrivateTmp=false
StandardOutput=append:/var/dcgm-exporter.log
StandardError=append:/var/dcgm-exporter.log
ExecStart=/bin/true -f /etc/dcgm-exporter/default-counters.csv
Restart=on-abort

[Install]
WantedBy=multi-user.target
"""


def _render_dropin(binary: str) -> str:
    import jinja2

    template = (
        ROOT
        / "roles/dcgm/templates/etc/systemd/system/nvidia-dcgm-exporter.service.d"
        / "sglfleet.conf.j2"
    ).read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "#\n# " + str(text) + "\n#"
    defaults = _defaults("dcgm")
    command = (
        f"{binary} --remote-hostengine-info localhost:5555 --collectors"
        f" /etc/dcgm-exporter/counters.csv --address"
        f" {defaults['dcgm_exporter_address']}:{defaults['dcgm_exporter_port']}"
    )
    return env.from_string(template).render(
        ansible_managed="Ansible managed",
        dcgm_service=defaults["dcgm_service"],
        _dcgm_exporter_command=command,
    )


def test_the_exporter_dropin_resets_execstart_and_verifies(tmp_path: Path) -> None:
    dropin = _render_dropin("/bin/true")
    exec_lines = [line for line in dropin.splitlines() if line.startswith("ExecStart=")]
    assert exec_lines[0] == "ExecStart="  # clears the package's command, then sets ours
    assert "--remote-hostengine-info localhost:5555" in exec_lines[1]
    assert "DynamicUser=yes" in dropin and "StandardOutput=journal" in dropin
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "scripts/setup.sh installs systemd (systemd-analyze)"
    (tmp_path / "nvidia-dcgm-exporter.service").write_text(VENDOR_EXPORTER_UNIT)
    (tmp_path / "nvidia-dcgm-exporter.service.d").mkdir()
    (tmp_path / "nvidia-dcgm-exporter.service.d" / "sglfleet.conf").write_text(dropin)
    run = subprocess.run(
        [analyze, "verify", "nvidia-dcgm-exporter.service"],
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and run.stdout + run.stderr == "", run.stdout + run.stderr
