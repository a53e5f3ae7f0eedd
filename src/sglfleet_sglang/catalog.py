"""SGLang's server flags, from the committed catalog, rebuilt into an argparse parser."""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from sglfleet_sglang import SGLANG_VERSION

# Dumped from the pinned release (tools/dump_sglang_flags.py); a new pin needs a new dump.
CATALOG_FILE = f"sglang_{SGLANG_VERSION.replace('.', '_')}_flags.json"

logger = logging.getLogger("sglfleet_sglang")


@dataclass(frozen=True)
class Flag:
    """One option of SGLang's parser, as tools/dump_sglang_flags.py recorded it."""

    option_strings: tuple[str, ...]
    dest: str
    action: str
    nargs: int | str | None
    type: str | None
    choices: tuple[Any, ...] | None
    const: Any
    default: Any
    required: bool
    new_flag: str | None = None

    @property
    def name(self) -> str:
        """The first spelling, which SGLang's help lists first (e.g. --tp-size)."""
        return self.option_strings[0]


@dataclass(frozen=True)
class Catalog:
    """The whole parser: flags plus how SGLang's --config merger treats each YAML key."""

    sglang_version: str
    prog: str
    allow_abbrev: bool
    flags: tuple[Flag, ...]
    config_store_true_keys: frozenset[str]
    config_unsupported_keys: dict[str, str]
    cuda_graph_config_keys: dict[str, tuple[str, ...]]

    def by_option(self) -> dict[str, Flag]:
        return {option: flag for flag in self.flags for option in flag.option_strings}

    def matches(self, option: str) -> list[str]:
        """The option strings `option` names the way SGLang's argparse reads it: itself when it
        is one, else (allow_abbrev) every option string it is a prefix of; one is a match, more
        is argparse's "ambiguous option" error, none an unknown flag."""
        options = self.by_option()
        if option in options:
            return [option]
        if not self.allow_abbrev or not option.startswith("--"):
            return []
        return [o for o in options if o.startswith(option)]


def catalog_from_dict(data: dict[str, Any]) -> Catalog:
    flags = tuple(
        Flag(
            option_strings=tuple(f["option_strings"]),
            dest=f["dest"],
            action=f["action"],
            nargs=f["nargs"],
            type=f["type"],
            choices=None if f["choices"] is None else tuple(f["choices"]),
            const=f["const"],
            default=f["default"],
            required=bool(f["required"]),
            new_flag=f.get("new_flag"),
        )
        for f in data["flags"]
    )
    return Catalog(
        sglang_version=data["sglang_version"],
        prog=data["prog"],
        allow_abbrev=bool(data["allow_abbrev"]),
        flags=flags,
        config_store_true_keys=frozenset(data["config"]["store_true_keys"]),
        config_unsupported_keys=dict(data["config"]["unsupported_keys"]),
        cuda_graph_config_keys={k: tuple(v) for k, v in data["cuda_graph_config_keys"].items()},
    )


def known_versions() -> list[str]:
    """The SGLang releases this package holds a flag catalog for (sglang_X_Y_Z_flags.json)."""
    found = []
    for entry in resources.files("sglfleet_sglang").iterdir():
        name = entry.name
        if name.startswith("sglang_") and name.endswith("_flags.json"):
            found.append(name[len("sglang_") : -len("_flags.json")].replace("_", "."))
    return sorted(found)


def catalog_data() -> dict[str, Any]:
    """The committed catalog file as plain data."""
    text = resources.files("sglfleet_sglang").joinpath(CATALOG_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def load_catalog() -> Catalog:
    return catalog_from_dict(catalog_data())


# --- argparse type callables, re-implemented from SGLang 0.5.23 (sglang.srt.utils.common) ---


def human_readable_int(value: str) -> int:
    """SGLang's int with SI (k, M, G, T) or IEC (Ki, Mi, Gi, Ti) suffixes, e.g. 64k, 128Ki."""
    value = value.strip()
    si = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    iec = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)", value)
    if match:
        number, suffix = match.groups()
        if suffix in iec:
            if "." in number:
                raise argparse.ArgumentTypeError(
                    f"Decimals are not allowed with IEC suffixes like '{suffix}'."
                )
            return int(number) * iec[suffix]
        try:
            return int(Decimal(number) * si[suffix])
        except InvalidOperation as error:
            raise argparse.ArgumentTypeError(f"Invalid integer value: '{value}'.") from error
    try:
        return int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"Invalid integer value: '{value}'. "
            "Use a plain integer, SI suffixes (1k, 1M), or IEC suffixes (1Ki, 1Mi)."
        ) from error


def nullable_str(value: str) -> str | None:
    if not value or value == "None":
        return None
    return value


def json_value(value: str) -> Any:
    return json.loads(value)


def json_list(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"Invalid JSON list: {value}. Please provide a valid JSON list."
        ) from error


def cuda_graph_backend(value: str) -> str:
    if value == "tc_piecewise":
        raise argparse.ArgumentTypeError(
            "tc_piecewise was removed; select breakable, full, or disabled"
        )
    return value


def _cuda_graph_config(allowed: dict[str, tuple[str, ...]]) -> Callable[[str], Any]:
    def parse(raw: str) -> dict[str, dict[str, Any]]:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(
                f"--cuda-graph-config must be JSON: {error}"
            ) from error
        if not isinstance(parsed, dict):
            raise argparse.ArgumentTypeError(
                f"--cuda-graph-config must be a JSON object, got {type(parsed).__name__}"
            )
        result: dict[str, dict[str, Any]] = {}
        for phase, settings in parsed.items():
            if phase not in allowed:
                raise argparse.ArgumentTypeError(
                    f"--cuda-graph-config: unknown phase '{phase}',"
                    f" expected one of {tuple(allowed)}"
                )
            if not isinstance(settings, dict):
                raise argparse.ArgumentTypeError(
                    f"--cuda-graph-config['{phase}'] must be a JSON object"
                )
            if "backend" in settings:
                cuda_graph_backend(str(settings["backend"]))
            for key in settings:
                if key not in allowed[phase]:
                    raise argparse.ArgumentTypeError(
                        f"--cuda-graph-config['{phase}']: unknown key '{key}',"
                        f" expected one of {allowed[phase]}"
                    )
            result[phase] = dict(settings)
        return result

    parse.__name__ = "parse_cuda_graph_config_arg"
    return parse


def type_functions(catalog: Catalog) -> dict[str, Callable[[str], Any]]:
    """The catalog's type names -> callables that accept and reject what SGLang's do."""
    return {
        "str": str,
        "int": int,
        "float": float,
        "json": json_value,
        "json_list": json_list,
        "human_readable_int": human_readable_int,
        "nullable_str": nullable_str,
        "cuda_graph_backend": cuda_graph_backend,
        "cuda_graph_config": _cuda_graph_config(catalog.cuda_graph_config_keys),
    }


# --- the custom actions SGLang registers, with the same arity and stored values ---


class DeprecatedStoreTrueAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.new_flag = kwargs.pop("new_flag", None)
        kwargs.setdefault("nargs", 0)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        replacement = f" Use '{self.new_flag}' instead." if self.new_flag else ""
        logger.warning("'%s' is deprecated.%s", option_string, replacement)
        setattr(namespace, self.dest, True)


class DeprecatedStoreConstAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.new_flag = kwargs.pop("new_flag", None)
        self.const_value = kwargs.pop("const_value", None)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        replacement = f" Use '{self.new_flag}' instead." if self.new_flag else ""
        logger.warning("'%s' is deprecated.%s", option_string, replacement)
        setattr(namespace, self.dest, self.const_value)


class LoRAPathAction(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        paths: list[Any] = []
        for item in values or []:
            item = item.strip()
            if item.startswith("{") and item.endswith("}"):
                obj = json.loads(item)
                if "lora_path" not in obj or "lora_name" not in obj:
                    parser.error(f"{item!r} lacks 'lora_name' and 'lora_path' keys")
                paths.append(obj)
            else:
                paths.append(item)
        setattr(namespace, self.dest, paths)


def _positive_options(options: Sequence[str]) -> list[str]:
    """BooleanOptionalAction adds the --no- spellings itself; pass only the positive ones."""
    return [o for o in options if not (o.startswith("--no-") and "--" + o[5:] in options)]


def build_parser(catalog: Catalog, prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with SGLang's flags, arities, types, choices and defaults."""
    parser = argparse.ArgumentParser(
        prog=prog or catalog.prog,
        allow_abbrev=catalog.allow_abbrev,
        description=f"Rehearsal stand-in for SGLang {catalog.sglang_version} launch_server.",
    )
    types = type_functions(catalog)
    for flag in catalog.flags:
        options = list(flag.option_strings)
        common: dict[str, Any] = {"dest": flag.dest}
        if flag.action == "store":
            kwargs: dict[str, Any] = {**common, "default": flag.default}
            if flag.type is not None:
                kwargs["type"] = types[flag.type]
            if flag.nargs is not None:
                kwargs["nargs"] = flag.nargs
            if flag.choices is not None:
                kwargs["choices"] = list(flag.choices)
            if flag.const is not None:
                kwargs["const"] = flag.const
            if flag.required:
                kwargs["required"] = True
            parser.add_argument(*options, **kwargs)
        elif flag.action in ("store_true", "store_false"):
            parser.add_argument(*options, action=flag.action, default=flag.default, **common)
        elif flag.action == "boolean_optional":
            parser.add_argument(
                *_positive_options(options),
                action=argparse.BooleanOptionalAction,
                default=flag.default,
                **common,
            )
        elif flag.action == "deprecated_store_true":
            parser.add_argument(
                *options,
                action=DeprecatedStoreTrueAction,
                new_flag=flag.new_flag,
                default=flag.default,
                **common,
            )
        elif flag.action == "deprecated_store_const":
            kwargs = {
                **common,
                "action": DeprecatedStoreConstAction,
                "new_flag": flag.new_flag,
                "const_value": flag.const,
                "nargs": flag.nargs,
                "default": flag.default,
            }
            if flag.choices is not None:
                kwargs["choices"] = list(flag.choices)
            parser.add_argument(*options, **kwargs)
        elif flag.action == "lora_paths":
            parser.add_argument(
                *options,
                action=LoRAPathAction,
                nargs=flag.nargs,
                type=str,
                default=flag.default,
                **common,
            )
        else:
            raise ValueError(f"catalog action {flag.action} of {flag.name} is not supported")
    return parser
