"""Driver origin, adoption, persistenced user and the OS preflight, decided from files captured on
the real H200 host (tests/fixtures/metal/h200-ubuntu2404) and from written variants."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from sglfleet.driver_origin import (
    DriverProbe,
    driver_origin,
    driver_plan,
    parse_dpkg_query,
    parse_dpkg_search,
    parse_probe,
    parse_proc_devices,
    persistenced_command,
)
from sglfleet.host_checks import HostProbe, host_problems, os_problems, parse_host_probe, tools_from

ROOT = Path(__file__).resolve().parents[3]
METAL = ROOT / "tests" / "fixtures" / "metal"
REAL = METAL / "h200-ubuntu2404"
UBUNTU_REPO = METAL / "written-ubuntu2204-proprietary-repo"
DEBIAN_OPEN = METAL / "written-debian12-open-packaged"
RUNFILE = METAL / "written-runfile-ubuntu2404"
TRACES = ("/usr/bin/nvidia-installer", "/usr/bin/nvidia-uninstall", "/var/log/nvidia-installer.log")


def _read(capture: Path, name: str) -> str:
    path = capture / name
    return path.read_text() if path.exists() else ""


def driver_probe(capture: Path) -> DriverProbe:
    """The role's probe, rebuilt from the capture files (see COMMANDS.txt for their commands)."""
    modules = dict(
        line.split(maxsplit=1)
        for line in _read(capture, "sys-module-versions").splitlines()
        if " " in line
    )
    origin = _read(capture, "driver-origin").splitlines()
    smi = origin[0] if origin and origin[0].startswith("/") else ""
    traces = tuple(
        trace
        for line in origin
        if "cannot access" not in line
        for trace in TRACES
        if line.split()[-1:] == [trace] or f" {trace} ->" in line
    )
    return DriverProbe(
        module_version=modules.get("nvidia", ""),
        proc_version=_read(capture, "proc-driver-nvidia-version").splitlines()[0]
        if _read(capture, "proc-driver-nvidia-version")
        else "",
        proc_devices=parse_proc_devices(_read(capture, "proc-devices")),
        smi_path=smi,
        smi_owners=parse_dpkg_search("\n".join(origin)),
        runfile_traces=traces,
        packages=parse_dpkg_query(_read(capture, "dpkg-query-nvidia")),
    )


def host_probe(capture: Path) -> HostProbe:
    lines = _read(capture, "pid1").splitlines()
    comm = next((line.split("=", 1)[1] for line in lines if line.startswith("comm=")), "")
    return HostProbe(
        pid1=comm,
        systemd_booted="/run/systemd/system" in lines,
        tools=tools_from(line for line in lines if line.startswith("/") and " " not in line),
    )


def os_release(capture: Path) -> tuple[str, str, str]:
    fields = dict(
        line.split("=", 1) for line in _read(capture, "os-release").splitlines() if "=" in line
    )
    name = fields["NAME"].strip('"').split()[0]
    version = fields["VERSION_ID"].strip('"')
    return name, version, version.split(".")[0]


# --- driver origin ---------------------------------------------------------------------------


def test_real_host_driver_is_an_image_of_the_open_580_branch() -> None:
    found = driver_origin(driver_probe(REAL))
    assert found["origin"] == "image"
    assert found["foreign"] is True
    assert found["version"] == found["loaded_version"] == "580.159.04"
    assert found["kernel_modules"] == "open"
    assert found["smi_path"] == "/usr/local/nvidia/bin/nvidia-smi"
    # cuda-compat-13-0 (580.95.05) is installed there: a library, not the driver.
    assert found["package"] == ""
    assert found["driver_packages"] == []
    assert "owned by no package" in found["evidence"]


def test_ubuntu_repo_driver_is_a_package_with_proprietary_modules() -> None:
    found = driver_origin(driver_probe(UBUNTU_REPO))
    assert found["origin"] == "package"
    assert found["package"] == "nvidia-utils-580"
    assert found["package_version"] == "580.95.05"
    assert found["version"] == "580.95.05"
    assert found["kernel_modules"] == "proprietary"
    assert "nvidia-dkms-580" in found["driver_packages"]


def test_debian_open_driver_is_a_package() -> None:
    found = driver_origin(driver_probe(DEBIAN_OPEN))
    assert (found["origin"], found["package"], found["kernel_modules"]) == (
        "package",
        "nvidia-smi",
        "open",
    )
    assert "cuda-compat-13-0" not in found["driver_packages"]


def test_runfile_driver_is_foreign() -> None:
    found = driver_origin(driver_probe(RUNFILE))
    assert found["origin"] == "runfile"
    assert found["version"] == "570.172.08"
    assert "/usr/bin/nvidia-installer" in found["evidence"]


def test_nothing_installed_and_installed_but_not_loaded() -> None:
    assert driver_origin(DriverProbe())["origin"] == "none"
    pending = DriverProbe(
        packages={"nvidia-kernel-open-dkms": "580.95.05-1", "libcuda1": "580.95.05-1"}
    )
    found = driver_origin(pending)
    assert (found["origin"], found["package"], found["version"]) == (
        "package",
        "nvidia-kernel-open-dkms",
        "580.95.05",
    )
    assert found["kernel_modules"] == "open"


def test_role_probe_output_parses_like_the_capture() -> None:
    """The detect probe's own format (tab-separated), written from the real host's values."""
    text = "\n".join(
        [
            "module-version\t580.159.04",
            "proc-version\tNVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04"
            "  Release Build  (nixbld@)",
            "proc-device\t195 nvidia",
            "proc-device\t195 nvidiactl",
            "smi\t/usr/local/nvidia/bin/nvidia-smi",
            "package\tcuda-compat-13-0\t580.95.05-0ubuntu1\tinstalled",
            "package\tnvidia-utils-580\t\tnot-installed",
            "tool\tdpkg-query\t/usr/bin/dpkg-query",
            "tool\tnvidia-smi\t/usr/local/nvidia/bin/nvidia-smi",
        ]
    )
    probe = parse_probe(text)
    assert probe.proc_devices == ("nvidia", "nvidiactl")
    assert probe.packages == {"cuda-compat-13-0": "580.95.05-0ubuntu1"}
    assert probe.tools == {
        "dpkg-query": "/usr/bin/dpkg-query",
        "nvidia-smi": "/usr/local/nvidia/bin/nvidia-smi",
    }
    assert driver_origin(probe) == driver_origin(driver_probe(REAL)) | {
        "evidence": driver_origin(probe)["evidence"]
    }


def test_dpkg_search_reads_several_owners_and_skips_messages() -> None:
    text = (
        "diversion by x from: /usr/bin/nvidia-smi\n"
        "nvidia-utils-580:amd64, other: /usr/bin/nvidia-smi\n"
    )
    assert parse_dpkg_search(text) == ("nvidia-utils-580", "other")
    assert parse_dpkg_search("dpkg-query: no path found matching pattern /usr/bin/nvidia-smi") == ()


# --- what the role does ----------------------------------------------------------------------


def test_real_host_is_refused_by_default_with_the_ways_forward() -> None:
    plan = driver_plan(
        driver_origin(driver_probe(REAL)), host="gpu-a", foreign_mode="refuse", branch="580"
    )
    assert plan["action"] == "refuse"
    (problem,) = plan["problems"]
    assert problem.startswith("gpu-a: found an NVIDIA driver 580.159.04 (open kernel modules)")
    assert (
        "origin image" in problem
        and "nvidia_driver_foreign: adopt" in problem
        and "rerun" in problem
    )
    # The old failure must never come back.
    assert " but  is installed" not in problem


def test_real_host_is_adopted_when_the_pin_matches() -> None:
    found = driver_origin(driver_probe(REAL))
    plan = driver_plan(
        found, host="gpu-a", foreign_mode="adopt", branch="580", kernel_modules="open"
    )
    assert plan == {"action": "adopt", "problems": [], "summary": plan["summary"]}
    assert "skipped" in plan["summary"]
    exact = driver_plan(
        found, host="gpu-a", foreign_mode="adopt", branch="580", version="580.95.05"
    )
    assert "not nvidia_driver_version 580.95.05" in exact["problems"][0]
    flavour = driver_plan(
        found, host="gpu-a", foreign_mode="adopt", branch="580", kernel_modules="proprietary"
    )
    assert "nvidia_driver_kernel_modules: open" in flavour["problems"][0]


def test_runfile_of_another_branch_is_not_adopted() -> None:
    found = driver_origin(driver_probe(RUNFILE))
    plan = driver_plan(found, host="gpu-b", foreign_mode="adopt", branch="580")
    assert plan["action"] == "adopt"
    assert "570.172.08, outside nvidia_driver_branch 580" in plan["problems"][0]
    refused = driver_plan(found, host="gpu-b", foreign_mode="refuse", branch="580")
    assert "nvidia-uninstall" in refused["problems"][0]


@pytest.mark.parametrize("capture", [UBUNTU_REPO, DEBIAN_OPEN])
def test_packaged_drivers_are_managed(capture: Path) -> None:
    plan = driver_plan(
        driver_origin(driver_probe(capture)), host="h", foreign_mode="refuse", branch="580"
    )
    assert plan["action"] == "install" and plan["problems"] == []


# --- persistenced ----------------------------------------------------------------------------


def test_persistenced_user_comes_from_the_packaged_unit() -> None:
    assert persistenced_command(_read(UBUNTU_REPO, "persistenced-unit")) == {
        "binary": "/usr/bin/nvidia-persistenced",
        "user": "nvidia-persistenced",
    }
    # Debian runs it as nvpd; the drop-in after the unit (written by an older sglfleet) is ignored.
    assert persistenced_command(_read(DEBIAN_OPEN, "persistenced-unit"))["user"] == "nvpd"
    assert persistenced_command("") == {"binary": "", "user": ""}
    assert (
        persistenced_command("ExecStart=/usr/bin/nvidia-persistenced --user=nvpd\n")["user"]
        == "nvpd"
    )


# --- the OS preflight ------------------------------------------------------------------------


def test_real_host_is_refused_for_its_pid1_not_its_os() -> None:
    name, version, major = os_release(REAL)
    assert os_problems("gpu-a", name, version, major) == []
    problems = host_problems(
        "gpu-a",
        host_probe(REAL),
        distribution=name,
        version=version,
        major_version=major,
        gpu_node=True,
        simulated=False,
    )
    assert problems[0].startswith("gpu-a: PID 1 is `process_api`, not systemd")
    assert "Fix:" in problems[0]
    # No kmod tools there either: said once each, with the package to install.
    assert any("`modprobe` is not installed" in p and "kmod" in p for p in problems)


@pytest.mark.parametrize("capture", [UBUNTU_REPO, DEBIAN_OPEN, RUNFILE])
def test_written_systemd_hosts_pass(capture: Path) -> None:
    name, version, major = os_release(capture)
    probe = host_probe(capture)
    tools = dict(probe.tools) | {"dpkg-query": "/usr/bin/dpkg-query", "apt-get": "/usr/bin/apt-get"}
    probe = HostProbe(pid1=probe.pid1, systemd_booted=probe.systemd_booted, tools=tools)
    assert (
        host_problems(
            "h",
            probe,
            distribution=name,
            version=version,
            major_version=major,
            gpu_node=True,
            simulated=False,
        )
        == []
    )


@pytest.mark.parametrize(
    ("distribution", "version", "major", "ok"),
    [
        ("Ubuntu", "24.04", "24", True),
        ("Ubuntu", "22.04", "22", True),
        ("Debian", "12.8", "12", True),
        ("Ubuntu", "20.04", "20", False),
        ("Debian", "11.11", "11", False),
        ("Rocky", "9.4", "9", False),
    ],
)
def test_supported_os_versions(distribution: str, version: str, major: str, ok: bool) -> None:
    problems = os_problems("n1", distribution, version, major)
    assert (problems == []) is ok
    if not ok:
        assert problems[0].startswith(f"n1 runs {distribution} {version}") and "Fix:" in problems[0]


# --- the Ansible filter file -----------------------------------------------------------------


def load_filters() -> ModuleType:
    path = ROOT / "plugins" / "filter" / "sglfleet_driver.py"
    spec = importlib.util.spec_from_file_location("sglfleet_driver_filters", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_filters_chain_from_probe_to_plan() -> None:
    filters = load_filters().FilterModule().filters()
    found = filters["sglfleet_driver_found"](
        "module-version\t580.159.04\nsmi\t/usr/local/nvidia/bin/nvidia-smi\ntool\tsystemctl\t/usr/bin/systemctl\n"
    )
    assert found["origin"] == "image" and found["tools"] == {"systemctl": "/usr/bin/systemctl"}
    plan = filters["sglfleet_driver_plan"](found, "gpu-a", "adopt", 580, "", "open")
    assert plan["action"] == "adopt" and plan["problems"] == []
    missing = filters["sglfleet_missing_tools"](
        found["tools"], ["systemctl", "modprobe"], "gpu-a", "to load modules"
    )
    assert missing == [
        "gpu-a: `modprobe` is not installed (needed to load modules). "
        "Fix: install the kmod package (apt-get install kmod)."
    ]
    # The role's own probe carries PID 1 too: the role stops clearly without the preflight.
    assert "process_api" in filters["sglfleet_systemd_problems"]("pid1\tprocess_api\n", "gpu-a")[0]
    assert (
        filters["sglfleet_systemd_problems"]("pid1\tsystemd\nsystemd-booted\tyes\n", "gpu-a") == []
    )
    problems = filters["sglfleet_host_problems"](
        "pid1\tprocess_api\n", "gpu-a", "Ubuntu", "24.04", "24", True, False
    )
    assert "process_api" in problems[0]


# --- the role's probe itself, run on this machine ----------------------------------------------


def _detect_probe_script() -> str:
    """The shell of roles/nvidia_driver/tasks/detect.yml, rendered with the role's vars."""
    import shlex

    import jinja2
    import yaml

    tasks = yaml.safe_load((ROOT / "roles/nvidia_driver/tasks/detect.yml").read_text())
    role_vars = yaml.safe_load((ROOT / "roles/nvidia_driver/vars/main.yml").read_text())
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    environment.filters["quote"] = shlex.quote
    names = (
        "_nvidia_driver_runfile_traces",
        "_nvidia_driver_probe_packages",
        "_nvidia_driver_probe_tools",
    )
    return environment.from_string(tasks[0]["ansible.builtin.shell"]).render(
        {name: role_vars[name] for name in names}
    )


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="the probe runs under bash")
def test_detect_probe_runs_and_feeds_the_filter(tmp_path: Path) -> None:
    """No NVIDIA driver on the development machine: `none`; a stray nvidia-smi owned by no
    package on PATH (as on the real host's /usr/local/nvidia/bin): `image`."""
    import subprocess

    script = _detect_probe_script()
    base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    def probe(path: str) -> DriverProbe:
        run = subprocess.run(
            ["/bin/bash", "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": path},
            check=True,
        )
        return parse_probe(run.stdout)

    plain = probe(base_path)
    if plain.module_version or plain.smi_path:
        pytest.skip("this machine has an NVIDIA driver")
    assert driver_origin(plain)["origin"] == "none"
    fake = tmp_path / "nvidia" / "bin"
    fake.mkdir(parents=True)
    (fake / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nvidia-smi").chmod(0o755)
    found = driver_origin(probe(f"{fake}:{base_path}"))
    assert (found["origin"], found["smi_path"]) == ("image", str(fake / "nvidia-smi"))
    plan = driver_plan(found, host="dev", foreign_mode="refuse", branch="580")
    assert plan["action"] == "refuse" and "origin image" in plan["problems"][0]


def _task_shell(playbook: str, task_name: str) -> str:
    import yaml

    plays = yaml.safe_load((ROOT / playbook).read_text())
    for play in plays:
        for task in play.get("tasks", []):
            if task.get("name") == task_name:
                return str(task["ansible.builtin.shell"]["cmd"])
    raise AssertionError(f"{playbook}: no task {task_name!r}")


def test_preflight_probe_runs_here_and_refuses_this_machine() -> None:
    """The OS preflight's own probe; this development machine is, like the GPU machine, a VM whose
    PID 1 is not systemd, so the same refusal must come out."""
    import subprocess

    script = _task_shell(
        "playbooks/preflight.yml", "Preflight | Read PID 1 and look for the commands the roles run"
    )
    # node_check.yml runs the same probe; the two must not drift apart.
    assert script == _task_shell(
        "playbooks/node_check.yml",
        "Node check | Read PID 1 and look for the commands the roles run",
    )
    run = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True)
    probe = parse_host_probe(run.stdout)
    comm = Path("/proc/1/comm").read_text().strip() if Path("/proc/1/comm").exists() else ""
    assert probe.pid1 == comm
    problems = host_problems(
        "dev",
        probe,
        distribution="Debian",
        version="12",
        major_version="12",
        gpu_node=False,
        simulated=True,
    )
    booted = comm == "systemd" or Path("/run/systemd/system").is_dir()
    if booted:
        assert not any("not systemd" in p for p in problems)
    else:
        assert f"dev: PID 1 is `{comm}`, not systemd" in problems[0]
