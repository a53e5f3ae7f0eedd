"""The log filter the serving role installs keeps API keys out of SGLang's logs."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location(
    "sglfleet_log_redact", ROOT / "roles/sglang_server/files/sglfleet_log_redact.py"
)
assert SPEC and SPEC.loader
redact_module = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(redact_module)


def test_server_args_repr_is_redacted() -> None:
    # The shape SGLang 0.5.23 logs at start-up: `server_args=ServerArgs(..., api_key='...', ...)`.
    line = (
        "server_args=ServerArgs(model_path='/m', api_key='sk-canary-123', "
        'admin_api_key="adm-456", port=30000, watchdog_timeout=300)'
    )
    out = redact_module.redact(line)
    assert "sk-canary-123" not in out and "adm-456" not in out
    assert "api_key='<redacted>'" in out and "port=30000" in out


def test_other_spellings_and_bearer_headers() -> None:
    out = redact_module.redact('{"api-key": "k1"} api_key=k2, Authorization: Bearer tok.en-3')
    assert "k1" not in out and "k2" not in out and "tok.en-3" not in out
    assert redact_module.redact("api_key=None") == "api_key=None"


def test_filter_on_a_dictconfig_handler(capsys: object) -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "key %s", ("api_key='s3cr3t'",), None
    )
    assert redact_module.RedactFilter().filter(record)
    assert "s3cr3t" not in record.getMessage()


def test_logging_template_is_valid_json() -> None:
    text = (ROOT / "roles/sglang_server/templates/etc/sglfleet/logging.json.j2").read_text()
    config = json.loads(text.replace("{{ sglang_server_log_level | upper }}", "INFO"))
    assert config["filters"]["redact"]["()"] == "sglfleet_log_redact.RedactFilter"
    assert config["handlers"]["stderr"]["filters"] == ["redact"]
