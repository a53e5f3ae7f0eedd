"""The manifest format sglfleet writes next to weights: the Hugging Face tree API's answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Same names as the node-side tool (src/sglfleet_stage), which must stay stdlib-only and apart.
MANIFEST_NAME = ".sglfleet-hub-tree.json"
MARKER_NAME = ".sglfleet-verified.json"


@dataclass(frozen=True)
class ManifestFile:
    path: str
    size: int
    sha256: str | None
    git_oid: str


def read_manifest(directory: Path) -> list[ManifestFile]:
    """The files a model directory's manifest lists, with the digests the hub publishes."""
    data = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    out = []
    for item in data:
        if item.get("type") != "file":
            continue
        lfs = item.get("lfs") or {}
        out.append(ManifestFile(str(item["path"]), int(item["size"]), lfs.get("oid"), item["oid"]))
    return out
