"""tokens_to_config writes the --config mapping that parses exactly like the tokens do."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from sglfleet.server_config import ServerConfigError, config_to_tokens, tokens_to_config
from sglfleet_sglang.catalog import build_parser, load_catalog
from sglfleet_sglang.config_file import merge_config_with_args

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "inventories/examples").iterdir())


def parse_tokens(tokens: list[str]) -> argparse.Namespace:
    return build_parser(load_catalog()).parse_args(tokens)


def parse_config_file(config: dict[str, object], tmp_path: Path) -> argparse.Namespace:
    path = tmp_path / "server-args.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    argv = merge_config_with_args(["--config", str(path)], load_catalog())
    return build_parser(load_catalog()).parse_args(argv)


TOKENS = [
    "--model-path", "/var/lib/sglfleet/models/deepseek-r1",
    "--served-model-name", "deepseek-r1",
    "--tp-size", "16",
    "--attn-dp-size", "8",
    "--host", "192.0.2.21",
    "--port", "30000",
    "--nnodes", "2",
    "--node-rank", "1",
    "--dist-init-addr", "10.0.0.1:20000",
    "--mem-fraction-static", "0.88",
    "--context-length", "64k",
    "--trust-remote-code",
    "--enable-metrics",
    "--cuda-graph-bs-decode", "1", "2", "4",
    "--disaggregation-mode", "prefill",
    "--disaggregation-ib-device", "mlx5_0,mlx5_1",
    "--served-model-name", "true",
    "--api-key", "<redacted>",
]  # fmt: skip


def test_mapping_uses_flag_names_and_yaml_types() -> None:
    config = tokens_to_config(TOKENS)
    assert config["tp-size"] == 16
    assert config["mem-fraction-static"] == 0.88
    assert config["context-length"] == "64k"  # kept verbatim: SGLang parses the suffix
    assert config["enable-metrics"] is True
    assert config["cuda-graph-bs-decode"] == [1, 2, 4]
    assert config["served-model-name"] == "true"  # last one wins, as on the command line
    assert config["api-key"] == "<redacted>"
    assert not any("_" in key for key in config)


def test_config_file_parses_like_the_command_line(tmp_path: Path) -> None:
    via_file = parse_config_file(tokens_to_config(TOKENS), tmp_path)
    assert vars(via_file) | {"config": None} == vars(parse_tokens(TOKENS)) | {"config": None}


def test_equals_form_and_aliases_are_canonicalised() -> None:
    config = tokens_to_config(["--model=/m", "--tensor-parallel-size", "4", "--ep", "2"])
    assert config == {"model-path": "/m", "tp-size": 4, "ep-size": 2}


def test_config_to_tokens_is_sglangs_own_expansion() -> None:
    tokens = config_to_tokens({"model-path": "/m", "enable-metrics": True, "tp-size": 2})
    assert tokens == ["--model-path", "/m", "--enable-metrics", "--tp-size", "2"]
    assert config_to_tokens({"enable-metrics": False}) == []


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["--cuda-graph-max-bs", "128"], "ambiguous to SGLang.*--cuda-graph-max-bs-decode"),
        (["--tp_size", "2"], "not an SGLang server flag.*--tp-size"),
        (["--enable-dp-attention"], "cannot be written.*--attn-dp-size"),
        (["--enable-tf32-matmul"], "cannot be written"),
        (["--enable-metrics", "yes"], "takes no value"),
        (["--tp-size"], "exactly one value"),
        (["--tp-size", "2", "4"], "exactly one value"),
        (["stray", "--tp-size", "2"], "before any flag"),
    ],
)
def test_tokens_sglang_would_reject_raise(tokens: list[str], message: str) -> None:
    with pytest.raises(ServerConfigError, match=message):
        tokens_to_config(tokens)


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda p: p.name)
def test_example_inventories_write_equivalent_config_files(inventory: Path, tmp_path: Path) -> None:
    from sglfleet.inventory import load_inventory
    from sglfleet.topology import plan

    cluster = plan(load_inventory(inventory))
    for group in cluster.serving_groups:
        for node in group.nodes:
            tokens = list(node.server_args)
            config = tokens_to_config(tokens)
            expected = vars(parse_tokens(tokens)) | {"config": None}
            assert vars(parse_config_file(config, tmp_path)) | {"config": None} == expected
