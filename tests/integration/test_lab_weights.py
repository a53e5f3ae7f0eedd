"""Weights on the lab: a byte flipped in a staged file on one node is found and re-staged by the
next `sglfleet up`, and the engine keeps running from verified weights only."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Lab

pytestmark = pytest.mark.integration

MODEL_DIR = "/var/lib/sglfleet/models/lab-tiny"


def _sha256(lab: Lab, node: str, path: str) -> str:
    proc = lab.exec(node, "sha256sum", path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[0]


def test_flipped_byte_is_detected_and_restaged(lab: Lab) -> None:
    listing = lab.exec("lab-2", "sh", "-c", f"ls {MODEL_DIR}/*.safetensors")
    assert listing.returncode == 0, listing.stderr
    shard = listing.stdout.split()[0]
    good = _sha256(lab, "lab-2", shard)
    assert lab.exec("lab-2", "sglfleet-stage", "check", MODEL_DIR).returncode == 0

    # Flip one byte in the middle of the shard and put its modification time back, so that only
    # reading the data can tell (the hardest case for the per-run check).
    flip = (
        "import os,sys; p=sys.argv[1]; st=os.stat(p); f=open(p,'r+b'); f.seek(st.st_size//2); "
        "b=f.read(1); f.seek(st.st_size//2); f.write(bytes([b[0]^0xFF])); f.close(); "
        "os.utime(p,ns=(st.st_atime_ns,st.st_mtime_ns))"
    )
    assert lab.exec("lab-2", "python3", "-c", flip, shard).returncode == 0
    assert _sha256(lab, "lab-2", shard) != good

    again = lab.sglfleet(
        "up", "-i", str(lab.inventory), "--tags", "storage", "-e", "model_weights_verify=full",
        "--json", timeout=1800,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    recap = json.loads(again.stdout)["recap"]
    assert recap["lab-2"]["changed"] >= 1, recap
    assert recap["lab-1"]["failed"] == recap["lab-3"]["failed"] == 0
    assert _sha256(lab, "lab-2", shard) == good
    assert lab.exec("lab-2", "sglfleet-stage", "check", MODEL_DIR).returncode == 0
    lab.wait_ready()
