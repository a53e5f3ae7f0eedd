"""Unit files are checked by `systemd-analyze verify` through the template's `validate:`, before
they are installed (filter `sglfleet_unit_validate`). Runs systemd's own checker, installed on this
machine and in CI by scripts/setup.sh (Debian's systemd package)."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.ansible_content.test_sglang_unit import LAUNCH, PRECOMPILE_UNIT, UNIT, render

ROOT = Path(__file__).resolve().parents[3]
_SPEC = importlib.util.spec_from_file_location(
    "sglfleet_units_filter", ROOT / "plugins/filter/sglfleet_units.py"
)
assert _SPEC is not None and _SPEC.loader is not None
_FILTER = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_FILTER)
sglfleet_unit_validate = _FILTER.sglfleet_unit_validate

GOOD = "[Unit]\nDescription=good\n\n[Service]\nExecStart=/bin/true\n"
UNIT_SUFFIXES = (".service", ".mount", ".timer", ".socket", ".path")


def validate(path: Path, unit: str) -> subprocess.CompletedProcess[str]:
    """Run the command exactly as Ansible's copy does: `validate % tmp`, split, no shell."""
    command = sglfleet_unit_validate(unit) % str(path)
    return subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)


def test_a_good_unit_passes(tmp_path: Path) -> None:
    (tmp_path / "tmpAbC123").write_text(GOOD)
    assert validate(tmp_path / "tmpAbC123", "good@r1.service").returncode == 0


def test_an_unknown_key_fails_although_systemd_only_warns(tmp_path: Path) -> None:
    (tmp_path / "tmp").write_text(GOOD + "RestartSecs=5\n")
    result = validate(tmp_path / "tmp", "typo.service")
    assert result.returncode != 0
    assert "Unknown key" in result.stderr and "RestartSecs" in result.stderr


def test_a_missing_executable_fails(tmp_path: Path) -> None:
    (tmp_path / "tmp").write_text(GOOD.replace("/bin/true", "/opt/nowhere/bin/python"))
    result = validate(tmp_path / "tmp", "missing.service")
    assert result.returncode != 0
    assert "/opt/nowhere/bin/python" in result.stderr


def test_a_mount_unit_is_checked_under_its_own_name(tmp_path: Path) -> None:
    mount = "[Unit]\nDescription=m\n\n[Mount]\nWhat=nfs:/models\nWhere=/mnt/models\nType=nfs\n"
    (tmp_path / "tmp").write_text(mount)
    assert validate(tmp_path / "tmp", "mnt-models.mount").returncode == 0
    assert validate(tmp_path / "tmp", "mnt-weights.mount").returncode != 0


def test_not_a_unit_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a systemd unit file name"):
        sglfleet_unit_validate("/etc/systemd/system/")


@pytest.mark.parametrize(
    ("template", "unit"),
    [(UNIT, "sglang-server@r1.service"), (PRECOMPILE_UNIT, "sglang-precompile@r1.service")],
)
def test_the_rendered_serving_units_pass_systemd_analyze(
    tmp_path: Path, template: str, unit: str
) -> None:
    # The real units as the role renders them, with a venv made here standing in for the node's
    # (systemd checks that every Exec path exists).
    install_dir = tmp_path / "opt"
    (install_dir / "venv/bin").mkdir(parents=True)
    python = install_dir / "venv/bin/python"
    python.symlink_to(sys.executable)
    launch = {**LAUNCH, "argv": [str(python), "-m", "sglang.launch_server", "--config", "x"]}
    text = render(
        template,
        sglang_server_launch=launch,
        sglang_server_install_dir=str(install_dir),
        sglang_server_stage_command="/bin/true",
    )
    path = tmp_path / "tmp"
    path.write_text(text)
    result = validate(path, unit)
    assert result.returncode == 0, result.stderr


def _tasks(path: Path) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for task in yaml.safe_load(path.read_text()) or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found.extend(task.get(key) or [])
    return found


def test_every_unit_a_role_writes_is_validated_before_it_is_installed() -> None:
    """Every template task whose destination is a unit file (drop-ins aside) has the validate."""
    checked = []
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        for task in _tasks(path):
            for module in ("sglfleet_template", "ansible.builtin.template"):
                args = task.get(module)
                if not isinstance(args, dict):
                    continue
                src = str(args.get("src", ""))
                if not src.endswith(tuple(s + ".j2" for s in UNIT_SUFFIXES)):
                    continue
                checked.append(f"{path.parent.parent.name}: {task['name']}")
                assert "sglfleet_unit_validate" in str(args.get("validate", "")), (path, task)
    assert len(checked) >= 8, checked
