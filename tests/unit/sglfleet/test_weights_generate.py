"""The generated model directory: real safetensors, a manifest in the hub's tree format."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from sglfleet.weights import MANIFEST_NAME, generate_model_dir, read_manifest


def test_safetensors_headers_are_real(tmp_path: Path) -> None:
    model = generate_model_dir(tmp_path / "m", name="tiny", files=2, file_mb=3)
    index = json.loads((model / "model.safetensors.index.json").read_text())
    shards = sorted(model.glob("*.safetensors"))
    assert [s.name for s in shards] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    total = 0
    for shard in shards:
        raw = shard.read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        data = raw[8 + length :]
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        assert tensors
        end = 0
        for name, info in tensors.items():
            assert info["dtype"] == "BF16"
            rows, cols = info["shape"]
            start, stop = info["data_offsets"]
            assert stop - start == rows * cols * 2
            assert start == end
            end = stop
            assert index["weight_map"][name] == shard.name
        assert end == len(data)
        total += shard.stat().st_size
    assert index["metadata"]["total_size"] == total
    assert json.loads((model / "config.json").read_text())["model_type"] == "llama"
    assert (model / "tokenizer_config.json").is_file()


def test_manifest_matches_hub_tree_format_and_content(tmp_path: Path) -> None:
    model = generate_model_dir(tmp_path / "m", name="tiny", files=2, file_mb=1, seed=7)
    tree = json.loads((model / MANIFEST_NAME).read_text())
    for entry in tree:
        assert entry["type"] == "file"
        data = (model / entry["path"]).read_bytes()
        assert entry["size"] == len(data)
        if entry["path"].endswith(".safetensors"):
            assert entry["lfs"]["oid"] == hashlib.sha256(data).hexdigest()
            assert entry["lfs"]["size"] == len(data)
            pointer = (
                "version https://git-lfs.github.com/spec/v1\n"
                f"oid sha256:{entry['lfs']['oid']}\nsize {len(data)}\n"
            ).encode()
            blob = f"blob {len(pointer)}\0".encode() + pointer
            assert entry["oid"] == hashlib.sha1(blob).hexdigest()
        else:
            assert "lfs" not in entry
            assert entry["oid"] == hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
    assert {f.path for f in read_manifest(model)} == {e["path"] for e in tree}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_model_dir(tmp_path / "a", name="x", files=1, file_mb=1, seed=1)
    b = generate_model_dir(tmp_path / "b", name="x", files=1, file_mb=1, seed=1)
    c = generate_model_dir(tmp_path / "c", name="x", files=1, file_mb=1, seed=2)
    assert (a / MANIFEST_NAME).read_bytes() == (b / MANIFEST_NAME).read_bytes()
    assert (a / MANIFEST_NAME).read_bytes() != (c / MANIFEST_NAME).read_bytes()
