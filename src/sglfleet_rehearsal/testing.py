"""Helpers for tests and lab checks: a tiny valid model directory, and engine processes."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml


def write_tiny_model(directory: Path, *, max_position_embeddings: int = 4096) -> Path:
    """config.json plus one well-formed .safetensors file (8 bytes of float32 data)."""
    directory.mkdir(parents=True, exist_ok=True)
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "lm_head.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        }
    ).encode("utf-8")
    with (directory / "model.safetensors").open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "max_position_embeddings": max_position_embeddings,
    }
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start_engine(
    config: Path, *extra: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`python -m sglfleet_rehearsal --config FILE ...` in a child process, output to `log`."""
    source = str(Path(__file__).resolve().parent.parent)
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (source, child_env.get("PYTHONPATH", "")) if p
    )
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "sglfleet_rehearsal", "--config", str(config), *extra],
        env=child_env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status code of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_for_status(url: str, wanted: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(url) == wanted:
            return True
        time.sleep(0.05)
    return False
