"""Generate a model directory that looks like a hub snapshot: real safetensors, real manifest.

The hub is unreachable here, so the lab and the tests stage these instead. Tensor data is
pseudo-random (seeded), so a flipped byte anywhere changes the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

from sglfleet.weights.manifest import MANIFEST_NAME

_LFS_POINTER_SIZE = 135  # bytes of a git-lfs pointer file; the hub reports it as pointerSize
_CHUNK = 1 << 20


def _git_blob_sha1(data: bytes) -> str:
    header = f"blob {len(data)}\0".encode()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    ).encode()


def hub_tree_entry(directory: Path, relative: str, *, lfs: bool) -> dict[str, Any]:
    """One entry as `GET /api/models/{repo}/tree/{rev}?recursive=true` returns it."""
    data_path = directory / relative
    size = data_path.stat().st_size
    sha256 = hashlib.sha256()
    with data_path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
    if lfs:
        pointer = _lfs_pointer(sha256.hexdigest(), size)
        return {
            "type": "file",
            "oid": _git_blob_sha1(pointer),
            "size": size,
            "path": relative,
            "lfs": {"oid": sha256.hexdigest(), "size": size, "pointerSize": len(pointer)},
        }
    return {
        "type": "file",
        "oid": _git_blob_sha1(data_path.read_bytes()),
        "size": size,
        "path": relative,
    }


def _write_safetensors(
    path: Path, *, prefix: str, size_bytes: int, rng: random.Random
) -> dict[str, str]:
    """A valid safetensors file of about `size_bytes`: one BF16 tensor per 64 MiB of data."""
    per_tensor = 64 << 20
    hidden = 4096
    row = hidden * 2  # BF16 bytes per row
    remaining = max(row, size_bytes)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    layout: list[tuple[str, int]] = []
    offset, index = 0, 0
    while remaining > 0:
        nbytes = min(per_tensor, remaining)
        rows = max(1, nbytes // row)
        nbytes = rows * row
        name = f"{prefix}.layers.{index}.weight"
        header[name] = {
            "dtype": "BF16",
            "shape": [rows, hidden],
            "data_offsets": [offset, offset + nbytes],
        }
        layout.append((name, nbytes))
        offset += nbytes
        remaining -= nbytes
        index += 1
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # the format pads the header to 8 bytes
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for _, nbytes in layout:
            left = nbytes
            while left > 0:
                take = min(_CHUNK, left)
                out.write(rng.randbytes(take))
                left -= take
    return {name: path.name for name, _ in layout}


def generate_model_dir(path: Path, *, name: str, files: int, file_mb: float, seed: int = 0) -> Path:
    """Write `files` safetensors shards of about `file_mb` MB each, configs and the manifest.

    Returns the directory, `path` itself. Same arguments, same bytes: the seed drives the data.
    """
    if files < 1:
        raise ValueError("files must be at least 1")
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{name}:{seed}")
    weight_map: dict[str, str] = {}
    shard_names = [f"model-{i + 1:05d}-of-{files:05d}.safetensors" for i in range(files)]
    for i, shard in enumerate(shard_names):
        weight_map.update(
            _write_safetensors(
                path / shard, prefix=f"model.shard{i}", size_bytes=int(file_mb * 1e6), rng=rng
            )
        )
    total = sum((path / s).stat().st_size for s in shard_names)
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n"
    )
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": files,
        "torch_dtype": "bfloat16",
        "_name_or_path": name,
        "sglfleet_generated": True,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer = {"model_max_length": 32768, "tokenizer_class": "PreTrainedTokenizerFast"}
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2) + "\n")
    small = ["config.json", "model.safetensors.index.json", "tokenizer_config.json"]
    tree = [hub_tree_entry(path, f, lfs=False) for f in small]
    tree += [hub_tree_entry(path, s, lfs=True) for s in shard_names]
    tree.sort(key=lambda e: str(e["path"]))
    (path / MANIFEST_NAME).write_text(json.dumps(tree, indent=1) + "\n")
    return path
