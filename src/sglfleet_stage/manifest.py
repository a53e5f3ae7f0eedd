"""Expected files and digests: the hub's tree listing, or SGLang's model-checksum manifest."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Written next to the weights (shared storage or a mirror): the hub's tree API answer, verbatim.
MANIFEST_NAME = ".sglfleet-hub-tree.json"


class ManifestError(Exception):
    """The manifest is missing, unreadable or lists an unsafe path."""


@dataclass(frozen=True)
class Expected:
    """One file the model directory must hold, with the digest its publisher vouches for."""

    path: str
    size: int
    sha256: str | None  # the hub's LFS oid, or SGLang's checksum
    git_oid: str | None  # git blob SHA-1: the only digest the hub publishes for non-LFS files

    def describe_digest(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else f"git blob {self.git_oid}"


def _safe_path(raw: str) -> str:
    norm = posixpath.normpath(raw)
    if norm.startswith(("/", "../")) or norm in ("..", ".") or "\\" in raw or "\0" in raw:
        raise ManifestError(f"manifest lists an unsafe path: {raw!r}")
    return norm


def git_blob_header(size: int) -> bytes:
    return f"blob {size}\0".encode()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(git_blob_header(len(data)) + data, usedforsecurity=False).hexdigest()


def parse_manifest(data: Any) -> list[Expected]:
    """Accept the hub tree listing (a list) or SGLang's {"files": {...}} / {"checksums": {...}}."""
    out: list[Expected] = []
    if isinstance(data, list):
        for item in data:
            if not isinstance(item, dict) or item.get("type", "file") != "file":
                continue
            lfs = item.get("lfs") or {}
            sha256 = lfs.get("oid") or lfs.get("sha256") or item.get("sha256")
            out.append(
                Expected(
                    path=_safe_path(str(item["path"])),
                    size=int(item["size"]),
                    sha256=str(sha256).lower() if sha256 else None,
                    git_oid=str(item["oid"]).lower() if item.get("oid") else None,
                )
            )
    elif isinstance(data, dict) and isinstance(data.get("files"), dict):
        for name, info in data["files"].items():
            out.append(Expected(_safe_path(name), int(info["size"]), str(info["sha256"]), None))
    elif isinstance(data, dict) and isinstance(data.get("checksums"), dict):
        raise ManifestError(
            "SGLang's old 'checksums' format has no sizes; regenerate it with "
            "`python -m sglang.srt.utils.model_file_verifier generate`"
        )
    else:
        raise ManifestError(
            "unknown manifest format: expected the hub's tree list or {'files': {}}"
        )
    for entry in out:
        if not entry.sha256 and not entry.git_oid:
            raise ManifestError(f"manifest gives no digest for {entry.path}")
    if not out:
        raise ManifestError("manifest lists no files")
    paths = [e.path for e in out]
    if len(set(paths)) != len(paths):
        raise ManifestError("manifest lists a path twice")
    return sorted(out, key=lambda e: e.path)


def load_manifest(path: Path) -> list[Expected]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from None
    return parse_manifest(data)


def manifest_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
