"""Checks a model directory the way loading it would: config.json and safetensors headers.

Only the headers are read (8-byte little-endian length, then that much JSON), never the tensors,
so a 700 GB checkpoint is checked in well under a second.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# safetensors caps the header at 100 MB; anything larger is corruption.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class ModelCheckError(Exception):
    """The model directory would not load."""


@dataclass(frozen=True)
class ModelInfo:
    path: str
    config: dict[str, Any]
    safetensors_files: int
    tensors: int
    weight_bytes: int

    @property
    def architectures(self) -> list[str] | None:
        value = self.config.get("architectures")
        return [str(v) for v in value] if isinstance(value, list) else None

    @property
    def model_type(self) -> str | None:
        value = self.config.get("model_type")
        return str(value) if value is not None else None

    @property
    def max_position_embeddings(self) -> int | None:
        value = self.config.get("max_position_embeddings")
        return int(value) if isinstance(value, int) else None


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The header of one .safetensors file; raises ModelCheckError when it is not valid."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise ModelCheckError(f"{path}: shorter than the 8-byte safetensors header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or length > size - 8:
            raise ModelCheckError(
                f"{path}: header length {length} does not fit the file ({size} bytes)"
            )
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelCheckError(f"{path}: header is not JSON ({error})") from error
    if not isinstance(header, dict):
        raise ModelCheckError(f"{path}: header is not a JSON object")
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise ModelCheckError(f"{path}: tensor {name} lacks dtype, shape or data_offsets")
        offsets = entry["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise ModelCheckError(
                f"{path}: tensor {name} data_offsets {offsets} fall outside the file's"
                f" {data_size} data bytes (truncated download?)"
            )
    return header


def check_model_path(model_path: str, *, load_format: str = "auto") -> ModelInfo:
    """Validate a local model directory; `--load-format dummy` needs only config.json."""
    root = Path(model_path)
    if not root.is_dir():
        raise ModelCheckError(
            f"--model-path {model_path} is not a directory (the rehearsal engine does not"
            " download from a hub)"
        )
    config_file = root / "config.json"
    if not config_file.is_file():
        raise ModelCheckError(f"{config_file} is missing")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelCheckError(f"{config_file} is not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise ModelCheckError(f"{config_file} is not a JSON object")
    files = sorted(root.glob("*.safetensors"))
    if load_format == "dummy":
        return ModelInfo(str(root), config, 0, 0, 0)
    if not files:
        raise ModelCheckError(f"{root} has no *.safetensors files")
    tensors = 0
    weight_bytes = 0
    for file in files:
        header = read_safetensors_header(file)
        tensors += sum(1 for name in header if name != "__metadata__")
        weight_bytes += file.stat().st_size
    return ModelInfo(str(root), config, len(files), tensors, weight_bytes)
