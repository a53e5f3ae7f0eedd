"""The rehearsal engine parses arguments and --config files the way SGLang 0.5.23 does."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from sglfleet_rehearsal.engine import parse_args
from sglfleet_rehearsal.testing import write_config
from sglfleet_sglang.catalog import build_parser, human_readable_int, load_catalog
from sglfleet_sglang.config_file import ConfigFileError, merge_config_with_args

SRC = Path(__file__).resolve().parents[3] / "src"


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(load_catalog()).parse_args(argv)


def test_catalog_is_sglang_0_5_23_and_has_the_flags_we_emit() -> None:
    catalog = load_catalog()
    assert catalog.sglang_version == "0.5.23"
    options = catalog.by_option()
    for flag in (
        "--model-path", "--tp-size", "--dp-size", "--ep-size", "--attn-dp-size", "--nnodes",
        "--node-rank", "--dist-init-addr", "--nccl-port", "--mem-fraction-static",
        "--chunked-prefill-size", "--context-length", "--quantization", "--kv-cache-dtype",
        "--enable-metrics", "--api-key", "--served-model-name", "--trust-remote-code",
        "--disaggregation-mode", "--disaggregation-transfer-backend",
        "--disaggregation-bootstrap-port", "--disaggregation-ib-device", "--host", "--port",
        "--watchdog-timeout", "--cuda-graph-max-bs-decode",
    ):  # fmt: skip
        assert flag in options, flag
    # Gone in 0.5.23 (split per phase); a config naming it must fail, not be ignored.
    assert "--cuda-graph-max-bs" not in options
    assert options["--enable-dp-attention"].action == "deprecated_store_true"


def test_valid_arguments_parse_with_sglang_types() -> None:
    args = parse(
        [
            *("--model-path", "/m", "--tp-size", "16", "--enable-metrics"),
            *("--context-length", "64k", "--mem-fraction-static", "0.88"),
            *("--cuda-graph-bs-decode", "1", "2", "4"),
        ]
    )
    assert args.tp_size == 16
    assert args.enable_metrics is True
    assert args.context_length == 64000
    assert args.mem_fraction_static == 0.88
    assert args.cuda_graph_bs_decode == [1, 2, 4]
    assert args.port == 30000 and args.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model-path", "/m", "--tp-sizee", "2"], "unrecognized arguments: --tp-sizee"),
        # argparse prefix matching (SGLang keeps allow_abbrev): the old flag is now ambiguous.
        (["--model-path", "/m", "--cuda-graph-max-bs", "8"], "ambiguous option"),
        (["--model-path", "/m", "--tp-size", "two"], "invalid int value"),
        (["--model-path", "/m", "--kv-cache-dtype", "fp7"], "invalid choice"),
        (["--model-path", "/m", "--enable-metrics", "yes"], "unrecognized arguments: yes"),
        (["--tp-size", "2"], "required: --model-path"),
    ],
)
def test_bad_arguments_exit_2_like_argparse(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_human_readable_int_matches_sglang() -> None:
    assert human_readable_int("64k") == 64000
    assert human_readable_int("128Ki") == 131072
    assert human_readable_int("25.6k") == 25600
    with pytest.raises(argparse.ArgumentTypeError):
        human_readable_int("1.5Ki")


def test_config_keys_are_flag_names_and_the_command_line_wins(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "server-args.yaml",
        {
            "model-path": "/m",
            "tp-size": 8,
            "enable-metrics": True,
            "trust-remote-code": False,
            "cuda-graph-bs-decode": [1, 2],
            "api-key": "k",
            "json-model-override-args": {"a": 1},
        },
    )
    args = parse_args(["--config", str(config), "--tp-size", "16"])
    assert args.tp_size == 16  # command line over file
    assert args.enable_metrics is True
    assert args.trust_remote_code is False  # false store_true keys add nothing
    assert args.cuda_graph_bs_decode == [1, 2]
    assert args.api_key == "k"
    assert args.json_model_override_args == '{"a": 1}'


def test_config_with_field_names_is_rejected_like_sglang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.yaml", {"model-path": "/m", "tp_size": 2})
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--config", str(config)])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --tp_size 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.yaml", "model-path: /m\nenable-dp-attention: true\n", "Unsupported config option"),
        ("c.yaml", "- a\n- b\n", "dictionary at root level"),
        ("c.json", "{}", "must be YAML"),
    ],
)
def test_config_files_sglang_refuses(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigFileError, match=message):
        merge_config_with_args(["--config", str(path)], load_catalog())


def test_config_flag_errors() -> None:
    catalog = load_catalog()
    with pytest.raises(ConfigFileError, match="not found"):
        merge_config_with_args(["--config", "/nonexistent/c.yaml"], catalog)
    with pytest.raises(ConfigFileError, match="Multiple config files"):
        merge_config_with_args(["--config", "a.yaml", "--config", "b.yaml"], catalog)
    with pytest.raises(ConfigFileError, match="No config file"):
        merge_config_with_args(["--config"], catalog)


def test_module_rejects_unknown_flag_with_argparse_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"model-path": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "sglfleet_rehearsal", "--config", str(config), "--bogus-flag"],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "error: unrecognized arguments: --bogus-flag" in result.stderr
