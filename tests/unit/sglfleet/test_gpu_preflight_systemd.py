"""GPU preflight on a host whose PID 1 is not systemd (issue 14 item 6): the fabric_manager
check says what Ansible's "systemctl not found" means instead of carrying the module's message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.preflight.gpu import NO_SYSTEMD, ExpectedNode, evaluate, service_state

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gpu"
PLAYBOOK = Path(__file__).resolve().parents[3] / "playbooks" / "gpu_preflight.yml"
NODE = ExpectedNode("device-h200x2", 2, "H200-SXM-141GB", 141.0, "580", None)
# What ansible.builtin.systemd_service returns where there is no systemctl (ansible-core 2.19).
MODULE_MESSAGE = (
    'unknown (Failed to find required executable "systemctl" in paths: '
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)"
)


def _device(service: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((FIXTURES / "h200x2-device.json").read_text("utf-8"))
    raw = copy.deepcopy(raw)
    raw["fabric_manager"] = {"service": service}
    return raw


@pytest.mark.parametrize(
    "service",
    [MODULE_MESSAGE, "no systemd (PID 1 is not systemd)", "unknown (systemctl not found in paths)"],
)
def test_device_capture_without_systemd_says_what_it_means(service: str) -> None:
    checks = {c.check: c for c in evaluate(_device(service), NODE)}
    fabric = checks["fabric_manager"]
    # The real 2x H200 VM: fabric Completed/Success on both GPUs, the host manages NVSwitch.
    assert fabric.status == "ok"
    assert NO_SYSTEMD in fabric.observed
    assert "paths" not in fabric.observed
    assert "systemctl" not in fabric.observed


def test_a_real_service_state_is_kept() -> None:
    assert service_state("active") == "active"
    assert service_state("") == "unknown"
    assert service_state("x" * 300).endswith("...")


def test_playbook_reads_the_service_only_under_systemd() -> None:
    plays = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    tasks = [t for play in plays for t in play.get("tasks", [])]
    inner = [t for task in tasks for t in task.get("block", [])] + tasks
    probe = next(t for t in inner if "ansible.builtin.systemd_service" in t)
    assert "__gpu_preflight_systemd" in str(probe["when"])
