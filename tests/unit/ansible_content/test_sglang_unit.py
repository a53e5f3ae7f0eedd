"""The rendered serving unit for real GPU hosts: devices as systemd resolves them, JIT, precompile.

Device coverage is checked against /proc/devices and the device nodes captured on the real H200
(open modules) and against the written HGX variant (proprietary modules, NVSwitch, 8 HCAs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import FilterModule as AnsibleCoreFilters
from ansible.plugins.filter.mathstuff import FilterModule as AnsibleMathFilters

from sglfleet.device_access import (
    DeviceNode,
    device_allow_entries,
    parse_ls_nodes,
    parse_proc_devices,
    resolve,
    uncovered,
    unused_entries,
)
from sglfleet.jit import uses_deep_gemm

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles/sglang_server"
METAL = ROOT / "tests/fixtures/metal"
HOSTS = {
    "h200-open (captured)": METAL / "h200-ubuntu2404",
    "h200x2-open (captured)": METAL / "h200x2-ubuntu2404",
    "hgx-h100x8-proprietary (written)": METAL / "written-hgx-h100x8-proprietary",
}
UNIT = "etc/systemd/system/sglang-server@.service.j2"
PRECOMPILE_UNIT = "etc/systemd/system/sglang-precompile@.service.j2"
SERVER_ARGS = [
    "--model-path",
    "/var/lib/sglfleet/models/deepseek-r1",
    "--tp-size",
    "8",
    "--host",
    "192.0.2.21",
    "--port",
    "30000",
]
LAUNCH = {
    "group": "r1",
    "node_rank": 0,
    "nnodes": 1,
    "unit": "sglang-server@r1.service",
    "argv": ["/opt/sglfleet/venv/bin/python", "-m", "sglang.launch_server", "--config", "x"],
    "server_args": SERVER_ARGS,
    "config": {},
    "env": {"SGLANG_PORT": "20032"},
    "model_dir": "/var/lib/sglfleet/models/deepseek-r1",
    "rank0_url": "http://192.0.2.21:30000",
}


def _role_vars(**overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    variables.update(ansible_managed="Ansible managed", sglang_server_launch=LAUNCH)
    variables.update(overrides)
    constants = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    variables.update(constants)
    environment = _environment()
    for _ in range(3):  # constants refer to inputs and to each other
        for key, value in constants.items():
            variables[key] = _render_value(environment, value, variables)
    return variables


def _render_value(environment: jinja2.Environment, value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{{" in value:
        try:
            return environment.from_string(value).render(**variables)
        except jinja2.TemplateError:  # a constant of another part of the role (its own filters)
            return value
    if isinstance(value, dict):
        return {k: _render_value(environment, v, variables) for k, v in value.items()}
    return value


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        # Ansible also searches the template's own folder (where the units include their hardening).
        loader=jinja2.FileSystemLoader(
            [str(ROLE / "templates"), str(ROLE / "templates/etc/systemd/system")]
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(AnsibleCoreFilters().filters())
    environment.filters.update(AnsibleMathFilters().filters())
    return environment


def render(template: str, **overrides: Any) -> str:
    return _environment().get_template(template).render(**_role_vars(**overrides))


def _capture(host: Path) -> tuple[str, list[DeviceNode]]:
    return (host / "proc-devices").read_text(), parse_ls_nodes((host / "dev-nodes").read_text())


# --- devices ---


@pytest.mark.parametrize("host", HOSTS.values(), ids=HOSTS.keys())
def test_every_gpu_nvswitch_caps_and_rdma_node_is_reachable(host: Path) -> None:
    proc_devices, nodes = _capture(host)
    entries = device_allow_entries(render(UNIT))
    assert uncovered(entries, proc_devices, nodes) == []


@pytest.mark.parametrize("host", HOSTS.values(), ids=HOSTS.keys())
def test_the_captures_hold_the_nodes_the_test_is_about(host: Path) -> None:
    paths = {node.path for node in _capture(host)[1]}
    for expected in (
        "/dev/nvidia0",
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/infiniband/rdma_cm",
    ):
        assert expected in paths
    assert any(path.startswith("/dev/nvidia-caps/nvidia-cap") for path in paths)


def test_the_hgx_variant_covers_nvswitch_imex_and_every_hca() -> None:
    proc_devices, nodes = _capture(HOSTS["hgx-h100x8-proprietary (written)"])
    paths = {node.path for node in nodes}
    assert {"/dev/nvidia-nvswitchctl", "/dev/nvidia-nvlink", "/dev/nvidia7"} <= paths
    assert "/dev/nvidia-caps-imex-channels/channel0" in paths
    assert {f"/dev/infiniband/uverbs{i}" for i in range(8)} <= paths
    assert "195 nvidia-frontend" in proc_devices and "195 nvidia\n" not in proc_devices


def test_open_modules_register_no_frontend_name() -> None:
    """The defect: on the real H200 only nvidiactl (same major) let /dev/nvidia0 through."""
    proc_devices, nodes = _capture(HOSTS["h200-open (captured)"])
    gpu = [node for node in nodes if node.path == "/dev/nvidia0"]
    assert uncovered(["char-nvidia-frontend"], proc_devices, gpu) == gpu
    assert uncovered(["char-nvidia"], proc_devices, gpu) == []


def test_the_old_list_missed_rdma_cm_and_imex_channels() -> None:
    old = [
        "char-nvidiactl",
        "char-nvidia-frontend",
        "char-nvidia-uvm",
        "char-nvidia-caps",
        "char-nvidia-nvswitch",
        "char-nvidia-nvlink",
        "char-infiniband_verbs",
        "char-infiniband_mad",
    ]
    h200 = uncovered(old, *_capture(HOSTS["h200-open (captured)"]))
    assert [node.path for node in h200] == ["/dev/infiniband/rdma_cm"]
    hgx = {
        node.path for node in uncovered(old, *_capture(HOSTS["hgx-h100x8-proprietary (written)"]))
    }
    assert hgx == {"/dev/infiniband/rdma_cm", "/dev/nvidia-caps-imex-channels/channel0"}


def test_rdma_cm_is_allowed_by_path_not_the_whole_misc_major() -> None:
    proc_devices, nodes = _capture(HOSTS["h200-open (captured)"])
    allowed = resolve(device_allow_entries(render(UNIT)), proc_devices, nodes)
    assert ("c", 10, 258) in allowed
    assert ("c", 10, None) not in allowed  # fuse, kvm, userfaultfd... stay closed


def test_every_entry_serves_at_least_one_module_flavour() -> None:
    entries = device_allow_entries(render(UNIT))
    unused_everywhere = set(entries)
    for host in HOSTS.values():
        unused_everywhere &= set(unused_entries(entries, *_capture(host)))
    assert unused_everywhere == set()
    open_unused = unused_entries(entries, *_capture(HOSTS["h200-open (captured)"]))
    assert "char-nvidia-frontend" in open_unused  # ignored by systemd (a debug message)


def test_device_policy_auto_lifts_the_restriction_and_extras_are_added() -> None:
    auto = render(UNIT, sglang_server_device_policy="auto")
    assert "DevicePolicy=auto" in auto and "DeviceAllow=" not in auto
    closed = render(UNIT, sglang_server_device_allow_extra=["char-gdrdrv"])
    assert "DevicePolicy=closed" in closed
    assert "DeviceAllow=char-gdrdrv rw" in closed.splitlines()


def test_proc_devices_keeps_character_and_block_sections_apart() -> None:
    majors = parse_proc_devices((HOSTS["h200-open (captured)"] / "proc-devices").read_text())
    assert (253, "dimmctl") in majors["c"] and (253, "zram") in majors["b"]
    assert (253, "zram") not in majors["c"]
    assert [name for major, name in majors["c"] if major == 195] == ["nvidia", "nvidiactl"]


def test_the_role_filter_names_uncovered_nodes() -> None:
    from plugins.filter.sglfleet_serving_unit import sglfleet_devices_uncovered

    host = HOSTS["h200-open (captured)"]
    missing = sglfleet_devices_uncovered(
        (host / "dev-nodes").read_text(), (host / "proc-devices").read_text(), ["char-nvidia"]
    )
    assert "/dev/infiniband/rdma_cm (c 10:258)" in missing
    assert "/dev/nvidia-uvm (c 238:0)" in missing
    assert not any(item.startswith("/dev/nvidia0 ") for item in missing)


# --- JIT environment and caches ---


def _env_file(**overrides: Any) -> dict[str, str]:
    text = render("etc/sglfleet/server.env.j2", **overrides)
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value.strip("'")
    return values


def test_the_unit_gets_cuda_and_persistent_jit_caches() -> None:
    env = _env_file()
    assert env["CUDA_HOME"] == "/usr/local/cuda-13.0"
    assert env["PATH"].split(":")[:2] == ["/usr/local/cuda-13.0/bin", "/opt/sglfleet/venv/bin"]
    cache = "/var/cache/sglfleet/jit"
    assert env["SGLANG_CACHE_DIR"] == cache
    assert env["TRITON_CACHE_DIR"] == f"{cache}/triton"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == f"{cache}/inductor"
    assert env["FLASHINFER_WORKSPACE_BASE"] == cache
    assert env["CUDA_CACHE_PATH"] == f"{cache}/nv"
    assert env["SGLANG_DG_CACHE_DIR"] == env["DG_JIT_CACHE_DIR"] == "/var/cache/sglfleet/deep_gemm"
    assert env["SGLANG_PORT"] == "20032"


def test_the_group_env_overrides_the_jit_defaults() -> None:
    env = _env_file(sglang_server_extra_env={"TRITON_CACHE_DIR": "/scratch/triton"})
    assert env["TRITON_CACHE_DIR"] == "/scratch/triton"
    cuda = _env_file(sglang_server_cuda_home="/usr/local/cuda-12.9")
    assert cuda["PATH"].startswith("/usr/local/cuda-12.9/bin:")


def test_the_unit_may_write_its_caches() -> None:
    line = next(x for x in render(UNIT).splitlines() if x.startswith("ReadWritePaths="))
    assert set(line.split("=", 1)[1].split()) == {
        "/var/lib/sglang",
        "/var/cache/sglfleet/deep_gemm",
        "/var/cache/sglfleet/jit",
    }


def test_serving_playbook_maps_the_cuda_toolkit_version() -> None:
    plays = yaml.safe_load((ROOT / "playbooks/serving.yml").read_text())
    role = next(r for r in plays[0]["roles"] if r["role"] == "sglang_server")
    assert "cuda_toolkit_version" in role["vars"]["sglang_server_cuda_home"]


# --- DeepGEMM precompile ---


def test_precompile_unit_runs_sglangs_compiler_with_the_groups_flags() -> None:
    unit = render(PRECOMPILE_UNIT)
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert exec_start.startswith(
        "ExecStart=/opt/sglfleet/venv/bin/python -m sglang.compile_deep_gemm "
    )
    assert " ".join(SERVER_ARGS) in exec_start and exec_start.endswith("--timeout 3600")
    assert "--api-key" not in exec_start and "--config" not in exec_start
    assert "Type=oneshot" in unit and "User=sglang" in unit
    assert "DevicePolicy=closed" in unit  # same hardening and devices as the server
    stamp = re.search(r"ConditionPathExists=!(\S+)", unit)
    assert stamp is not None and stamp.group(1).startswith(
        "/var/cache/sglfleet/deep_gemm/.sglfleet-"
    )
    assert f"ExecStartPost=/usr/bin/touch {stamp.group(1)}" in unit


def test_precompile_stamp_changes_with_version_and_flags() -> None:
    def stamp(**overrides: Any) -> str:
        return str(_role_vars(**overrides)["_sglang_server_precompile_stamp"])

    base = stamp()
    assert re.fullmatch(r"\.sglfleet-precompiled-[0-9a-f]{16}", base)
    assert stamp(sglang_server_version="0.5.24") != base
    other = {**LAUNCH, "server_args": [*SERVER_ARGS, "--ep-size", "8"]}
    assert stamp(sglang_server_launch=other) != base


DEEPSEEK_V3_CONFIG = {  # config.json of deepseek-ai/DeepSeek-V3 and -R1 (quantization_config)
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "quantization_config": {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    },
}


def test_deep_gemm_is_used_by_block_fp8_checkpoints_and_fp8_flags() -> None:
    assert uses_deep_gemm(DEEPSEEK_V3_CONFIG, SERVER_ARGS)
    assert uses_deep_gemm(yaml.safe_dump(DEEPSEEK_V3_CONFIG), SERVER_ARGS) is False  # not JSON
    import json

    assert uses_deep_gemm(json.dumps(DEEPSEEK_V3_CONFIG), SERVER_ARGS)
    qwen = {"architectures": ["Qwen3ForCausalLM"], "torch_dtype": "bfloat16"}
    assert not uses_deep_gemm(qwen, SERVER_ARGS)
    assert uses_deep_gemm(qwen, [*SERVER_ARGS, "--quantization", "fp8"])
    assert not uses_deep_gemm(DEEPSEEK_V3_CONFIG, [*SERVER_ARGS, "--quantization=awq"])
    assert not uses_deep_gemm(None, SERVER_ARGS)
    assert not uses_deep_gemm("", SERVER_ARGS)


def test_the_role_lists_devices_with_the_captures_command() -> None:
    """One parser for the live probe and the captures: the listing command must be the same."""
    tasks = yaml.safe_load((ROLE / "tasks/gpu.yml").read_text())
    probe = next(t for t in tasks if "ansible.builtin.shell" in t)["ansible.builtin.shell"]["cmd"]
    listing = "ls -ln /dev/nvidia* /dev/nvidia-caps /dev/nvidia-caps-imex-channels /dev/infiniband"
    assert listing in probe
    commands = (METAL / "h200-ubuntu2404/COMMANDS.txt").read_text()
    assert listing in commands
