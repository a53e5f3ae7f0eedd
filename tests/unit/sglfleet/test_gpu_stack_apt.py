"""The DCGM, toolkit and fabric manager package sets against apt's own resolver.

Reuses the sandboxed apt of test_apt_pin.py on the stand-in repositories of build-repo.sh, where
DCGM carries NVIDIA's relations: -cuda13 only *recommends* -proprietary-cuda13, which depends on
-proprietary (the profiling module). apt runs without recommends, as the roles' apt tasks do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet import gpu_stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_apt_pin as apt_pin

ROOT = Path(__file__).resolve().parents[3]
PIN = "580.95.05-*"
pytestmark = apt_pin.pytestmark
render_pin = apt_pin.render_pin
resolve = apt_pin.resolve


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repos")
    subprocess.run(
        ["bash", str(apt_pin.BUILD_REPO), str(root), "debian12"],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KERNEL": apt_pin.KERNEL},
    )
    (root / "base").mkdir()
    (root / "base" / "Packages").write_text("")
    return root


def _dcgm_defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "roles/dcgm/defaults/main.yml").read_text())
    return data


def test_without_recommends_core_and_cuda13_lack_the_profiling_module(
    tmp_path: Path, repos: Path
) -> None:
    wanted = ["datacenter-gpu-manager-4-core", "datacenter-gpu-manager-4-cuda13"]
    chosen = resolve(tmp_path, repos, "debian12", render_pin("nvidia_repo", PIN), wanted)
    assert set(chosen) == set(wanted)  # what the role installed before: no DCGM_FI_PROF_* data


def test_the_role_defaults_bring_the_profiling_module_and_the_exporter(
    tmp_path: Path, repos: Path
) -> None:
    defaults = _dcgm_defaults()
    wanted = [*defaults["dcgm_packages"], defaults["dcgm_exporter_package"]]
    chosen = resolve(tmp_path, repos, "debian12", render_pin("nvidia_repo", PIN), wanted)
    assert "datacenter-gpu-manager-4-proprietary" in chosen
    assert "datacenter-gpu-manager-4-proprietary-cuda13" in chosen
    assert chosen["datacenter-gpu-manager-exporter"] == "4.5.0-1"


def test_the_default_toolkit_resolves(tmp_path: Path, repos: Path) -> None:
    version = yaml.safe_load((ROOT / "roles/cuda_toolkit/defaults/main.yml").read_text())[
        "cuda_toolkit_version"
    ]
    package = f"cuda-toolkit-{version.replace('.', '-')}"
    chosen = resolve(tmp_path, repos, "debian12", render_pin("nvidia_repo", PIN), [package])
    assert package in chosen


def test_fabric_manager_at_the_drivers_version_from_nvidia(tmp_path: Path, repos: Path) -> None:
    names = gpu_stack.fabric_manager_packages("Debian", 580)
    specs = [f"{name}=580.95.05-1" for name in names]
    chosen = resolve(tmp_path, repos, "debian12", render_pin("nvidia_repo", PIN), specs)
    assert {chosen[name] for name in names} == {"580.95.05-1"}


@pytest.mark.parametrize("missing", ["datacenter-gpu-manager-exporter-nonexistent"])
def test_a_package_apt_does_not_know_fails(tmp_path: Path, repos: Path, missing: str) -> None:
    result = resolve(
        tmp_path, repos, "debian12", render_pin("nvidia_repo", PIN), [missing], fails=True
    )
    assert "Unable to locate package" in result["error"]
