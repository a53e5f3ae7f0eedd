"""Where a model's architecture comes from (sglfleet.model_arch), and that the plan names it."""

from __future__ import annotations

import json
from pathlib import Path

from sglfleet.model_arch import KNOWN, architecture, from_config
from sglfleet.models import ModelSpec

QWEN_SHA = "b968826d9c46dd6066d109eabc6255188de91218"


def test_a_mirrored_config_json_readable_here_wins_over_the_table(tmp_path: Path) -> None:
    config = {
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "num_hidden_layers": 48,
        "max_position_embeddings": 131072,
        "num_experts": 128,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = ModelSpec(
        name="m", hub="mirror", mirror_path=str(tmp_path), repo_id="Qwen/Qwen3-8B", weights_gb=1
    )
    arch = architecture(model)
    assert arch is not None
    assert (arch.attention_heads, arch.kv_heads, arch.experts) == (40, 8, 128)
    assert arch.source == str(tmp_path / "config.json")


def test_a_known_hub_model_comes_from_the_table_and_says_so() -> None:
    model = ModelSpec(name="q", repo_id="Qwen/Qwen3-8B", revision=QWEN_SHA, weights_gb=16.4)
    arch = architecture(model)
    assert arch is not None and arch.attention_heads == 32 and arch.kv_heads == 8
    assert "table of known models (Qwen/Qwen3-8B)" in arch.source
    r1 = from_config(KNOWN["deepseek-ai/DeepSeek-R1"], "t")
    assert r1 is not None and r1.fp8_checkpoint and r1.experts == 256


def test_an_unknown_model_is_not_guessed(tmp_path: Path) -> None:
    model = ModelSpec(name="x", repo_id="someone/unknown", revision=QWEN_SHA, weights_gb=1)
    assert architecture(model) is None
    (tmp_path / "config.json").write_text("{not json")
    mirrored = ModelSpec(name="y", hub="mirror", mirror_path=str(tmp_path), weights_gb=1)
    assert architecture(mirrored) is None
