"""`sglfleet init` scaffolds inventories that plan cleanly and never overwrites one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sglfleet", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"SGLFLEET_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        check=False,
    )


@pytest.mark.parametrize("profile", ["single-node", "multi-node-tp", "replicas"])
def test_scaffold_plans_cleanly(profile: str, tmp_path: Path) -> None:
    dest = tmp_path / "inv"
    made = cli(tmp_path, "init", "--profile", profile, str(dest))
    assert made.returncode == 0, made.stderr
    assert (dest / "hosts.yml").is_file()
    planned = cli(tmp_path, "plan", "-i", str(dest), "--json")
    assert planned.returncode == 0, planned.stderr


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "inv"
    dest.mkdir()
    (dest / "hosts.yml").write_text("mine: true\n")
    again = cli(tmp_path, "init", str(dest))
    assert again.returncode == 1
    assert "Error:" in again.stderr and "Hint:" in again.stderr
    assert "Traceback" not in again.stderr
    assert (dest / "hosts.yml").read_text() == "mine: true\n"


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    result = cli(tmp_path, "init", "--profile", "nope", str(tmp_path / "x"))
    assert result.returncode == 1
    assert "multi-node-tp" in result.stderr
