"""The rehearsal engine refuses model directories that would not load."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sglfleet_rehearsal.testing import write_config, write_tiny_model
from sglfleet_rehearsal.weights import ModelCheckError, check_model_path

SRC = Path(__file__).resolve().parents[3] / "src"


def test_tiny_model_passes(tmp_path: Path) -> None:
    info = check_model_path(str(write_tiny_model(tmp_path / "m")))
    assert info.safetensors_files == 1
    assert info.tensors == 1
    assert info.architectures == ["Qwen3ForCausalLM"]


def test_missing_config_json(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "m")
    (model / "config.json").unlink()
    with pytest.raises(ModelCheckError, match=r"config\.json is missing"):
        check_model_path(str(model))


def test_no_safetensors_unless_dummy_load_format(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "m")
    (model / "model.safetensors").unlink()
    with pytest.raises(ModelCheckError, match=r"no \*\.safetensors"):
        check_model_path(str(model))
    assert check_model_path(str(model), load_format="dummy").safetensors_files == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x02", "shorter than"),
        (struct.pack("<Q", 10**9) + b"{}", "does not fit"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (
            struct.pack("<Q", 64)
            + json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
            .encode()
            .ljust(64)
            + b"\0" * 8,
            "outside the file",
        ),
    ],
)
def test_invalid_safetensors_headers(tmp_path: Path, payload: bytes, message: str) -> None:
    model = write_tiny_model(tmp_path / "m")
    (model / "model-00002.safetensors").write_bytes(payload)
    with pytest.raises(ModelCheckError, match=message):
        check_model_path(str(model))


def test_engine_exits_non_zero_with_a_clear_log(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "m")
    (model / "model.safetensors").write_bytes(b"\x00" * 4)
    config = write_config(tmp_path / "c.yaml", {"model-path": str(model), "port": 1})
    result = subprocess.run(
        [sys.executable, "-m", "sglfleet_rehearsal", "--config", str(config)],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot load the model" in result.stderr
    assert "model.safetensors" in result.stderr
