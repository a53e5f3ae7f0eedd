"""The hardware catalog: what sglfleet knows of each GPU family, in one table.

Looked up by a fragment of the GPU's model name (the inventory's `sglfleet_gpu_model`, or
nvidia-smi's product name), first match wins, so a longer fragment precedes the shorter one it
contains (H200 before H20, H100-NVL before H100). An entry that leaves a field unknown (None)
passes the lookup of that field on to the next matching entry.

- memory_gb: per-GPU memory as vendors quote it (decimal GB);
- line_rate_gbps and link: per-direction GPU-to-GPU line rate inside a node. NVLink: links x
  25 GB/s (NVLink 4: H100/H200 18 links; NVLink 5: B200 18 x 50); PCIe-only parts get their
  PCIe x16 rate per direction;
- fp8: the tensor cores run FP8 (Ada, Hopper, Blackwell; not Ampere).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuFamily:
    fragment: str
    memory_gb: float | None
    line_rate_gbps: float | None
    link: str | None
    fp8: bool | None


GPU_CATALOG: tuple[GpuFamily, ...] = (
    GpuFamily("GB200", 186.0, 900.0, "NVLink 5, 18 links", True),
    GpuFamily("B200", 180.0, 900.0, "NVLink 5, 18 links", True),
    GpuFamily("H100-NVL", 94.0, 300.0, "NVLink bridge, 12 links", True),
    GpuFamily("H100-PCIE", None, 64.0, "PCIe 5.0 x16", True),
    GpuFamily("H200-NVL", None, 450.0, "NVLink bridge", True),
    GpuFamily("H200", 141.0, 450.0, "NVLink 4, 18 links", True),
    GpuFamily("H100", 80.0, 450.0, "NVLink 4, 18 links", True),
    GpuFamily("H800", 80.0, 200.0, "NVLink 4, 8 links", True),
    GpuFamily("H20", 96.0, 450.0, "NVLink 4, 18 links", True),
    GpuFamily("A800", None, 200.0, "NVLink 3, 8 links", False),
    GpuFamily("A100-PCIE", None, 32.0, "PCIe 4.0 x16", False),
    GpuFamily("A100-40", 40.0, None, None, False),
    GpuFamily("A100", 80.0, 300.0, "NVLink 3, 12 links", False),
    GpuFamily("L40S", 48.0, 32.0, "PCIe 4.0 x16", True),
    GpuFamily("L40", 48.0, 32.0, "PCIe 4.0 x16", True),
    GpuFamily("L4", 24.0, 32.0, "PCIe 4.0 x16", True),
    GpuFamily("SIMULATED", 80.0, None, None, None),
)


def _matches(model: str) -> list[GpuFamily]:
    name = model.upper().replace(" ", "-")
    return [family for family in GPU_CATALOG if family.fragment in name]


def memory_gb(model: str | None) -> float | None:
    """Per-GPU memory of a GPU model name, None when unknown."""
    if not model:
        return None
    return next((f.memory_gb for f in _matches(model) if f.memory_gb is not None), None)


def line_rate(model: str | None) -> tuple[float | None, str]:
    """Per-direction GPU-to-GPU line rate of a model ('NVIDIA H200', 'H100-SXM5-80GB') and why."""
    if not model:
        return None, "unknown GPU model"
    for family in _matches(model):
        if family.line_rate_gbps is not None:
            rate = family.line_rate_gbps
            return rate, f"{family.fragment}: {family.link} = {rate:.0f} GB/s per direction"
    return None, f"no line rate known for {model}"


def supports_fp8(model: str | None) -> bool | None:
    """Whether the GPU's tensor cores run FP8; None when the model is unknown."""
    if not model:
        return None
    return next((f.fp8 for f in _matches(model) if f.fp8 is not None), None)
