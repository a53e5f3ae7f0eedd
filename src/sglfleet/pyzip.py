"""Byte-for-byte reproducible zip archives of the node-side Python packages.

A node runs `sglfleet_rehearsal` (with the SGLang contract `sglfleet_sglang` it imports) and
`sglfleet_stage` straight from one zip each on its PYTHONPATH (zipimport). Shipping one file
instead of one file per module turns a dozen remote module runs per host into one, and the archive
is reproducible (sorted names, fixed timestamps and modes, no compression), so an unchanged
package gives the same checksum on every controller and a rerun reports no change.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def _package_files(package_dir: Path) -> list[tuple[str, Path]]:
    package_dir = package_dir.resolve()
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"{package_dir} is not a Python package (no __init__.py)")
    return [
        (f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path)
        for path in package_dir.rglob("*")
        if path.is_file()
        and path.suffix not in _SKIP_SUFFIXES
        and not _SKIP_DIRS.intersection(path.relative_to(package_dir).parts)
    ]


def archive_bytes(*package_dirs: Path) -> bytes:
    """The zip of one or more package directories, each's files under the package's own name."""
    if not package_dirs:
        raise ValueError("no package to archive")
    files = sorted(entry for package in package_dirs for entry in _package_files(package))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, _EPOCH)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sglfleet" / "pyz"


def build(package_dir: str | Path | Sequence[str | Path], out_dir: Path | None = None) -> Path:
    """Write the packages' zip into the controller's cache (content-addressed); return its path.

    `package_dir`: one package directory, or several to ship in one zip (the first names it).
    """
    dirs = [package_dir] if isinstance(package_dir, str | Path) else list(package_dir)
    data = archive_bytes(*(Path(d) for d in dirs))
    name = Path(dirs[0]).resolve().name
    target_dir = out_dir or cache_dir()
    target = target_dir / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if target.is_file() and target.read_bytes() == data:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{name}-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
