"""Whether a serving group compiles DeepGEMM kernels at start (so the precompile step pays off).

SGLang 0.5.23 runs FP8 linear layers with block-wise scales through DeepGEMM on Hopper and newer
GPUs (srt/layers/deep_gemm_wrapper; SGLANG_ENABLE_JIT_DEEPGEMM defaults on). That is the case for
a checkpoint whose config.json says `quantization_config.quant_method: fp8` with a
`weight_block_size` (DeepSeek-V3/R1, Kimi K2, Qwen3 FP8...), and for `--quantization fp8`.
"""

from __future__ import annotations

import json
from typing import Any

_DEEP_GEMM_QUANTIZATIONS = {"fp8", "w8a8_fp8", "modelopt_fp8"}


def _flag_value(args: list[str], flag: str) -> str | None:
    for index, token in enumerate(args):
        if token == flag and index + 1 < len(args):
            return args[index + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def uses_deep_gemm(model_config: str | dict[str, Any] | None, server_args: list[str]) -> bool:
    """The model's config.json (text or mapping; None if unread) and the group's server flags."""
    quantization = _flag_value(server_args, "--quantization")
    if quantization is not None:
        return quantization in _DEEP_GEMM_QUANTIZATIONS
    if isinstance(model_config, str):
        try:
            model_config = json.loads(model_config)
        except json.JSONDecodeError:
            return False
    if not isinstance(model_config, dict):
        return False
    quant = model_config.get("quantization_config") or {}
    return bool(
        isinstance(quant, dict)
        and str(quant.get("quant_method", "")).lower() == "fp8"
        and quant.get("weight_block_size")
    )
