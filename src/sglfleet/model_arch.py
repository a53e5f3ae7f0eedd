"""A model's architecture as far as splitting it over GPUs goes, and where it was read from.

From the model's own config.json when the controller can read it (a `mirror`/`local` model whose
`mirror_path` is mounted here too), else from a small table of known models (the values of their
published config.json). `source` says which; an unknown model is not checked, and plan says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sglfleet.models import ModelSpec


@dataclass(frozen=True)
class Architecture:
    attention_heads: int
    kv_heads: int
    experts: int | None  # routed experts of an MoE model
    layers: int
    max_context: int
    fp8_checkpoint: bool  # weights stored as FP8 (quantization_config.quant_method == "fp8")
    source: str


_DEEPSEEK_V3 = {
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_routed_experts": 256,
    "num_hidden_layers": 61,
    "max_position_embeddings": 163840,
    "quantization_config": {"quant_method": "fp8"},
}
# Known models: repo_id -> the keys of its published config.json that the checks read.
KNOWN: dict[str, dict[str, Any]] = {
    "deepseek-ai/DeepSeek-R1": _DEEPSEEK_V3,
    "deepseek-ai/DeepSeek-R1-0528": _DEEPSEEK_V3,
    "deepseek-ai/DeepSeek-V3": _DEEPSEEK_V3,
    "deepseek-ai/DeepSeek-V3-0324": _DEEPSEEK_V3,
    "Qwen/Qwen3-8B": {
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 36,
        "max_position_embeddings": 40960,
    },
}


def from_config(config: dict[str, Any], source: str) -> Architecture | None:
    """config.json -> Architecture; None when it lacks what the checks need."""
    text = config.get("text_config")
    if isinstance(text, dict) and "num_attention_heads" not in config:
        config = {**config, **text}
    try:
        heads = int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        context = int(config["max_position_embeddings"])
    except (KeyError, TypeError, ValueError):
        return None
    experts = config.get("n_routed_experts") or config.get("num_experts")
    quant = config.get("quantization_config")
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    return Architecture(
        attention_heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        experts=int(experts) if experts else None,
        layers=layers,
        max_context=context,
        fp8_checkpoint=method == "fp8",
        source=source,
    )


def architecture(model: ModelSpec) -> Architecture | None:
    """The model's architecture: its mirrored config.json if readable here, else the table."""
    if model.mirror_path:
        path = Path(model.mirror_path) / "config.json"
        if path.is_file():
            try:
                config = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = None
            if isinstance(config, dict):
                found = from_config(config, str(path))
                if found is not None:
                    return found
    known = KNOWN.get(model.repo_id or "")
    if known is not None:
        return from_config(known, f"sglfleet's table of known models ({model.repo_id})")
    return None
