#!/usr/bin/env python3
"""Dump SGLang's own server-argument parser as a JSON catalog for the rehearsal engine.

Run with the python of a venv that has the pinned SGLang installed, e.g.

    /work/sglang-venv/bin/python tools/dump_sglang_flags.py \
        > src/sglfleet_sglang/sglang_0_5_23_flags.json

The catalog records, for every option of `python -m sglang.launch_server` (flag spellings, dest,
action kind, nargs, type, choices, const, default, required) and how SGLang's `--config FILE`
merger treats each YAML key. The rehearsal engine rebuilds an argparse parser from it, and
`sglfleet.server_config` uses it to write config files; a test compares it with this output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

# Type callables SGLang's parser uses, by qualified name -> the catalog's type name.
# An unknown one stops the dump: the rehearsal engine must learn it first.
KNOWN_TYPES = {
    "builtins.str": "str",
    "builtins.int": "int",
    "builtins.float": "float",
    "json.loads": "json",
    "sglang.srt.utils.common.json_list_type": "json_list",
    "sglang.srt.utils.common.human_readable_int": "human_readable_int",
    "sglang.srt.utils.common.nullable_str": "nullable_str",
    "sglang.srt.model_executor.cuda_graph_config.parse_cuda_graph_config_arg": (
        "cuda_graph_config"
    ),
    "sglang.srt.model_executor.cuda_graph_config.parse_cuda_graph_backend_arg": (
        "cuda_graph_backend"
    ),
}

# Action classes -> the catalog's action kind.
KNOWN_ACTIONS = {
    "_StoreAction": "store",
    "_StoreTrueAction": "store_true",
    "_StoreFalseAction": "store_false",
    "_StoreConstAction": "store_const",
    "_AppendAction": "append",
    "_CountAction": "count",
    "_HelpAction": "help",
    "BooleanOptionalAction": "boolean_optional",
    "DeprecatedStoreTrueAction": "deprecated_store_true",
    "DeprecatedStoreConstAction": "deprecated_store_const",
    "DeprecatedAction": "deprecated",
    "DeprecatedAliasStoreAction": "deprecated_alias_store",
    "LoRAPathAction": "lora_paths",
}


def _json_value(value: Any) -> Any:
    """A JSON-safe rendering of a default or choice (SGLang's are plain data or enums)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    enum_value = getattr(value, "value", None)
    if enum_value is not None and isinstance(enum_value, str | int):
        return enum_value
    return repr(value)


def _type_name(action: argparse.Action) -> str | None:
    func = action.type
    if func is None:
        return None
    qualified = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"
    if qualified not in KNOWN_TYPES:
        raise SystemExit(f"unknown argparse type {qualified} on {action.option_strings}")
    return KNOWN_TYPES[qualified]


def _action_kind(action: argparse.Action) -> str:
    name = type(action).__name__
    if name not in KNOWN_ACTIONS:
        raise SystemExit(f"unknown argparse action {name} on {action.option_strings}")
    return KNOWN_ACTIONS[name]


def _choices(action: argparse.Action) -> list[Any] | None:
    if action.choices is None:
        return None
    values = [_json_value(c) for c in action.choices]
    # Sets (e.g. --sampling-backend) have no stable order; sort those for a stable catalog.
    if isinstance(action.choices, set | frozenset):
        values.sort(key=str)
    return values


def dump() -> dict[str, Any]:
    from importlib.metadata import version

    from sglang.srt.model_executor.cuda_graph_config import ALLOWED_KEYS_PER_PHASE
    from sglang.srt.server_args import ServerArgs
    from sglang.srt.utils.server_args_config_parser import ConfigArgumentMerger

    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    merger = ConfigArgumentMerger(parser)

    flags: list[dict[str, Any]] = []
    for action in parser._actions:
        kind = _action_kind(action)
        if kind == "help":
            continue
        entry: dict[str, Any] = {
            "option_strings": list(action.option_strings),
            "dest": action.dest,
            "action": kind,
            "nargs": action.nargs,
            "type": _type_name(action),
            "choices": _choices(action),
            "const": _json_value(action.const),
            "default": _json_value(action.default),
            "required": bool(action.required),
        }
        if kind == "deprecated_store_const":
            entry["const"] = _json_value(getattr(action, "const_value", None))
        if kind.startswith("deprecated"):
            entry["new_flag"] = getattr(action, "new_flag", None)
        flags.append(entry)

    return {
        "sglang_version": version("sglang"),
        "generated_by": "tools/dump_sglang_flags.py",
        "prog": parser.prog,
        "allow_abbrev": parser.allow_abbrev,
        "config": {
            # YAML keys SGLang's ConfigArgumentMerger turns into a bare flag when true.
            "store_true_keys": sorted(set(merger.store_true_actions)),
            # YAML keys it refuses ("Unsupported config option"), with the action class.
            "unsupported_keys": {
                key: type(action).__name__
                for key, action in sorted(merger.unsupported_actions.items())
            },
        },
        "cuda_graph_config_keys": {k: list(v) for k, v in ALLOWED_KEYS_PER_PHASE.items()},
        "flags": flags,
    }


def main() -> int:
    # Environment knobs change SGLang's choices (e.g. SGLANG_KV_CANARY_*): dump the defaults.
    for name in list(os.environ):
        if name.startswith(("SGLANG_", "SGL_")):
            del os.environ[name]
    json.dump(dump(), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
