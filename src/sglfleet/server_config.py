"""Server-arg tokens <-> the mapping SGLang's `--config FILE` (YAML) reads. Pure; no I/O.

SGLang 0.5.23 turns each YAML key into `--{key}` verbatim, so keys are flag names without the
dashes (`tp-size`, `enable-metrics`), never field names (`tp_size` is an unknown flag there).
A store_true flag is `key: true`; a multi-value flag is a YAML list; everything else a scalar.
The flag catalog (dumped from SGLang's own parser) says which flag is which, and which flags a
config file cannot express at all (e.g. the deprecated `--enable-dp-attention`).
"""

from __future__ import annotations

import difflib
from typing import Any

from sglfleet_sglang.catalog import Catalog, Flag, load_catalog
from sglfleet_sglang.config_file import config_to_args

# nargs values under which argparse takes one token, or a list of them.
_LIST_NARGS = ("+", "*")


class ServerConfigError(ValueError):
    """The tokens cannot be written as an SGLang config file."""


def resolve(option: str, catalog: Catalog) -> Flag:
    """The flag SGLang's parser takes `option` for (exact, or an unambiguous prefix)."""
    by_option = catalog.by_option()
    found = catalog.matches(option)
    if len(found) > 1:
        raise ServerConfigError(
            f"{option} is ambiguous to SGLang's parser (it could be {', '.join(sorted(found))})"
        )
    if not found:
        close = difflib.get_close_matches(option.replace("_", "-"), list(by_option), n=3)
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ServerConfigError(f"{option} is not an SGLang server flag{hint}")
    return by_option[found[0]]


def _split(tokens: list[str]) -> list[tuple[str, list[str]]]:
    """Tokens -> (flag, values) in order; `--flag=value` is one flag with one value."""
    groups: list[tuple[str, list[str]]] = []
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            if "=" in token:
                option, value = token.split("=", 1)
                groups.append((option, [value]))
            else:
                groups.append((token, []))
        elif not groups:
            raise ServerConfigError(f"value {token!r} comes before any flag")
        else:
            groups[-1][1].append(token)
    return groups


def _scalar(flag: Flag, text: str) -> Any:
    """A YAML-friendly value whose str() is exactly `text`, so SGLang re-reads the same token."""
    if flag.type in ("int", "human_readable_int"):
        try:
            if str(int(text)) == text:
                return int(text)
        except ValueError:
            pass
    if flag.type == "float":
        try:
            if str(float(text)) == text:
                return float(text)
        except ValueError:
            pass
    return text


def _key(flag: Flag) -> str:
    return flag.name[2:]


def tokens_to_config(tokens: list[str], catalog: Catalog | None = None) -> dict[str, Any]:
    """The `--config` mapping equivalent to passing `tokens` on SGLang's command line.

    Raises ServerConfigError for an unknown flag, a wrong number of values, or a flag that
    SGLang's config merger refuses. Repeated flags keep the last value, as argparse does.
    """
    catalog = catalog or load_catalog()
    config: dict[str, Any] = {}
    for option, values in _split(tokens):
        flag = resolve(option, catalog)
        key = _key(flag)
        normalized = key.replace("-", "_")
        if normalized in catalog.config_unsupported_keys or any(
            o[2:].replace("-", "_") in catalog.config_unsupported_keys for o in flag.option_strings
        ):
            replacement = f"; use {flag.new_flag}" if flag.new_flag else ""
            raise ServerConfigError(
                f"{option} ({catalog.config_unsupported_keys.get(normalized, flag.action)})"
                f" cannot be written to an SGLang {catalog.sglang_version} config file{replacement}"
            )
        if normalized in catalog.config_store_true_keys:
            if values:
                raise ServerConfigError(f"{option} takes no value, got {values}")
            config.pop(key, None)
            config[key] = True
            continue
        if flag.nargs in _LIST_NARGS:
            if not values:
                raise ServerConfigError(f"{option} needs at least one value in a config file")
            config.pop(key, None)
            config[key] = [_scalar(flag, v) for v in values]
            continue
        if len(values) != 1:
            raise ServerConfigError(f"{option} takes exactly one value, got {values}")
        config.pop(key, None)
        config[key] = _scalar(flag, values[0])
    return config


def config_to_tokens(config: dict[str, Any], catalog: Catalog | None = None) -> list[str]:
    """The command-line tokens SGLang derives from a `--config` mapping (its own algorithm)."""
    return config_to_args(config, catalog or load_catalog())
