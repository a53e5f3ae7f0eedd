"""sglfleet installed the way the README shows (`pipx install`), not from the checkout: the wheel
carries the playbooks and roles (sglfleet/_project), and the CLI runs from any folder with a bare
environment (no venv on PATH), by its absolute path and as `python -m sglfleet`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "examples" / "qwen3-8b-4x1"

pytestmark = pytest.mark.integration


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "SGLFLEET_HOME": str(tmp_path / "sglfleet-home"),
    }
    # The machine's own package index and proxy settings, so that pip can fetch what it needs.
    for key, value in os.environ.items():
        if key.startswith("PIP_") or key.lower() in ("http_proxy", "https_proxy", "no_proxy"):
            env[key] = value
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def test_pipx_install_runs_from_anywhere(tmp_path: Path) -> None:
    env = _env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(["pipx", "install", str(ROOT)], env, elsewhere)
    sglfleet = tmp_path / "bin" / "sglfleet"
    python = tmp_path / "pipx" / "venvs" / "sglfleet" / "bin" / "python"
    assert sglfleet.exists() and python.exists()

    where = _run(
        [str(python), "-c", "from sglfleet.paths import project_root; print(project_root())"],
        env,
        elsewhere,
    ).strip()
    assert where.endswith("site-packages/sglfleet/_project"), where
    packaged = Path(where)
    for path in ("site.yml", "ansible.cfg", "plugins/vars/sglfleet_plan.py"):
        assert (packaged / path).is_file(), path
    # The role's copy of the engine packages is real files, not links back into a checkout.
    engine = packaged / "roles/sglang_server/files/sglfleet_sglang/__init__.py"
    assert engine.is_file() and not engine.parent.is_symlink()

    inventory = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inventory)
    plan = _run([str(sglfleet), "plan", "-i", str(inventory), "--json"], env, elsewhere)
    assert [g["name"] for g in json.loads(plan)["serving_groups"]]

    doctor = json.loads(_run([str(python), "-m", "sglfleet", "doctor", "--json"], env, elsewhere))
    items = {i["item"]: i for i in doctor["items"]}
    assert items["ansible-playbook"]["status"] == "ok", items["ansible-playbook"]
    assert str(tmp_path / "pipx") in items["ansible-playbook"]["observed"]

    # Ansible runs from the packaged playbooks and tries the host: its name and why are printed.
    unreachable = tmp_path / "unreachable"
    unreachable.mkdir()
    host = {
        "ansible_host": "127.0.0.1",
        "ansible_port": 9,
        "sglfleet_gpu_count": 1,
        "sglfleet_gpu_model": "L4-24GB",
    }
    (unreachable / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"sglfleet_gpu_nodes": {"hosts": {"gpu-x": host}}}}})
    )
    up = subprocess.run(
        [str(sglfleet), "up", "-i", str(unreachable), "--check"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=elsewhere,
        timeout=600,
        check=False,
    )
    out = up.stdout + up.stderr
    assert up.returncode != 0
    assert "exit code 127" not in out and "stopped before its first task" not in out, out[-3000:]
    assert "gpu-x" in out and "unreachable" in out and "127.0.0.1 port 9" in out, out[-3000:]
