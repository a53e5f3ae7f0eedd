"""The hardware catalog: one table of GPU families, looked up by a fragment of the model name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sglfleet import hardware

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "metal" / "h200-ubuntu2404"


def test_the_captured_h200s_product_name_resolves() -> None:
    xml = (CAPTURE / "nvidia-smi-q.xml").read_text()
    (product,) = set(re.findall(r"<product_name>([^<]*)</product_name>", xml))
    assert product == "NVIDIA H200"
    assert hardware.memory_gb(product) == 141.0
    assert hardware.line_rate(product) == (
        450.0,
        "H200: NVLink 4, 18 links = 450 GB/s per direction",
    )
    assert hardware.supports_fp8(product) is True


@pytest.mark.parametrize(
    ("model", "memory", "rate", "fp8"),
    [
        ("H200-SXM-141GB", 141.0, 450.0, True),
        ("H20", 96.0, 450.0, True),  # not taken for an H200: longer fragments come first
        ("NVIDIA H100 NVL", 94.0, 300.0, True),  # spaces read as dashes
        ("H100-SXM5-80GB", 80.0, 450.0, True),
        ("H100-PCIe-80GB", 80.0, 64.0, True),  # PCIe entry knows no memory: H100's is taken
        ("A100-PCIE-40GB", 80.0, 32.0, False),  # "A100-40" is not a fragment of this name
        ("A100-40GB", 40.0, 300.0, False),  # no line rate of its own: A100's
        ("L40", 48.0, 32.0, True),  # not L4's 24 GB
        ("L40S-48GB", 48.0, 32.0, True),
        ("GB200", 186.0, 900.0, True),  # 13.4 TB HBM3e over 72 GPUs (GB200 NVL72)
        ("SIMULATED", 80.0, None, None),
        ("Mystery GPU", None, None, None),
    ],
)
def test_lookups(model: str, memory: float | None, rate: float | None, fp8: bool | None) -> None:
    assert hardware.memory_gb(model) == memory
    assert hardware.line_rate(model)[0] == rate
    assert hardware.supports_fp8(model) is fp8


def test_a_longer_fragment_precedes_every_shorter_one_it_contains() -> None:
    fragments = [family.fragment for family in hardware.GPU_CATALOG]
    for i, short in enumerate(fragments):
        for long in fragments[i + 1 :]:
            assert short not in long, f"{long} comes after {short}, which matches it first"


def test_unknown_model_names_say_so() -> None:
    assert hardware.memory_gb(None) is None
    assert hardware.line_rate("") == (None, "unknown GPU model")
    assert hardware.line_rate("Mystery GPU") == (None, "no line rate known for Mystery GPU")
