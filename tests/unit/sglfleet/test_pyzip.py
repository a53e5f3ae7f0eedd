"""The node-side packages ship as reproducible zips that Python imports from PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sglfleet.pyzip import archive_bytes, build

SRC = Path(__file__).resolve().parents[3] / "src"


def test_archive_is_reproducible_and_ignores_bytecode(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "data.json").write_text("{}\n")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    first = archive_bytes(package)
    os.utime(package / "__init__.py", (1, 1))  # a fresh clone has other mtimes
    assert archive_bytes(package) == first
    assert zipfile.ZipFile(build(package, tmp_path / "out")).namelist() == [
        "pkg/__init__.py",
        "pkg/data.json",
    ]
    (package / "__init__.py").write_text("VALUE = 2\n")
    assert archive_bytes(package) != first


def test_refuses_a_directory_that_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Python package"):
        archive_bytes(tmp_path)


@pytest.mark.parametrize(
    ("packages", "code"),
    [
        (["sglfleet_stage"], "import sglfleet_stage.cli"),
        # The engine and the SGLang contract it imports ship in one zip (sglang_server's install);
        # the contract reads its flag catalog through importlib.resources, which works from a zip.
        (
            ["sglfleet_rehearsal", "sglfleet_sglang"],
            "from sglfleet_rehearsal.engine import parse_args; "
            "from sglfleet_sglang.catalog import load_catalog; load_catalog()",
        ),
    ],
)
def test_node_packages_import_from_their_zip(
    tmp_path: Path, packages: list[str], code: str
) -> None:
    package = packages[0]
    archive = build([SRC / p for p in packages], tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(archive)!r}); {code}; "
            f"import {package}; print({package}.__file__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(archive))
