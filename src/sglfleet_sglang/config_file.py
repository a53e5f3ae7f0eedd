"""SGLang 0.5.23's `--config FILE` semantics (sglang/srt/utils/server_args_config_parser.py).

The YAML file is a mapping whose keys are flag names without the leading `--`, spelled as on
the command line (`tp-size`, `api-key`: SGLang builds `--{key}` from the key verbatim, so
`tp_size` becomes the unknown flag `--tp_size`). Values: a boolean for a store_true flag adds
the bare flag when true and nothing when false; a boolean for any other flag becomes
`--key true|false`; a list becomes `--key v1 v2 ...` (nothing when empty); a mapping becomes
`--key <json>`; anything else `--key str(value)`. Keys of flags that take no value but are not
plain store_true (BooleanOptionalAction, deprecated booleans such as --enable-dp-attention) are
refused. The file's arguments go first, so the command line wins over the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sglfleet_sglang.catalog import Catalog


class ConfigFileError(ValueError):
    """The --config file or its use is invalid (SGLang raises ValueError for the same cases)."""


def config_path(argv: list[str]) -> str | None:
    indices = [i for i, arg in enumerate(argv) if arg == "--config"]
    if len(indices) > 1:
        raise ConfigFileError("Multiple config files specified! Only one allowed.")
    if not indices:
        return None
    if indices[0] == len(argv) - 1:
        raise ConfigFileError("No config file specified after --config flag!")
    return argv[indices[0] + 1]


def read_config(path: str) -> dict[str, Any]:
    file = Path(path)
    if file.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigFileError(f"Config file must be YAML format, got: {file.suffix}")
    if not file.exists():
        raise ConfigFileError(f"Config file not found: {path}")
    with file.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError("Config file must contain a dictionary at root level")
    return data


def config_to_args(config: dict[str, Any], catalog: Catalog) -> list[str]:
    """The argv tokens SGLang makes of a config mapping, in file order."""
    args: list[str] = []
    for key, value in config.items():
        key = str(key)
        normalized = key.replace("-", "_")
        if normalized in catalog.config_unsupported_keys:
            action = catalog.config_unsupported_keys[normalized]
            raise ConfigFileError(
                f"Unsupported config option '{normalized}' with action '{action}'"
            )
        if isinstance(value, bool):
            if normalized in catalog.config_store_true_keys:
                if value:
                    args.append(f"--{key}")
            else:
                args += [f"--{key}", str(value).lower()]
        elif isinstance(value, list):
            if value:
                args.append(f"--{key}")
                args += [str(item) for item in value]
        elif isinstance(value, dict):
            args += [f"--{key}", json.dumps(value)]
        else:
            args += [f"--{key}", str(value)]
    return args


def merge_config_with_args(argv: list[str], catalog: Catalog) -> list[str]:
    """argv with `--config FILE` replaced by the file's arguments, placed first."""
    path = config_path(argv)
    if path is None:
        return argv
    index = argv.index("--config")
    return config_to_args(read_config(path), catalog) + argv[:index] + argv[index + 2 :]
