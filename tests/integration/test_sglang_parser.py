"""Our server flags and config files, parsed by SGLang 0.5.23's own code, and the rehearsal
engine's parser held to the same answers.

Needs `SGLFLEET_SGLANG_PYTHON=/path/to/venv/bin/python` (a python with sglang==0.5.23); CI sets
it. Everything SGLang-side runs in one subprocess of that python, through
`sglang.srt.server_args.prepare_server_args` -- the function `python -m sglang.launch_server`
calls: the --config merge, argparse, then `ServerArgs.from_cli_args`. Resolution
(`ServerArgs.resolve_once`, where 0.5.23 does its hardware and checkpoint checks; its
`__post_init__` is empty) is not run: it needs GPUs and the real weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sglfleet.inventory import load_inventory
from sglfleet.server_config import ServerConfigError, tokens_to_config
from sglfleet.topology import plan
from sglfleet_sglang.catalog import build_parser, catalog_data, load_catalog
from sglfleet_sglang.config_file import merge_config_with_args

ROOT = Path(__file__).resolve().parents[2]
SGLANG_PYTHON = os.environ.get("SGLFLEET_SGLANG_PYTHON")
EXAMPLES = sorted((ROOT / "inventories/examples").iterdir())

pytestmark = [
    pytest.mark.sglang,
    pytest.mark.skipif(
        not SGLANG_PYTHON,
        reason="SGLFLEET_SGLANG_PYTHON is unset: no python with sglang==0.5.23 to check against",
    ),
]

# Runs under SGLang's python: parse each job's argv with SGLang's own launcher code.
SGLANG_SIDE = r"""
import contextlib, io, json, sys
import msgspec
from sglang.srt.server_args import prepare_server_args

def plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return repr(value)

results = {}
for job in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = prepare_server_args(job["argv"])
        results[job["id"]] = {"ok": True, "args": plain(msgspec.structs.asdict(args))}
    except SystemExit as exit_:
        text = err.getvalue()
        lines = [line for line in text.splitlines() if "error:" in line]
        message = "\n".join(lines) or text[-600:]
        results[job["id"]] = {"ok": False, "exit": exit_.code, "error": message}
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        results[job["id"]] = {"ok": False, "exit": None, "error": message}
json.dump(results, sys.stdout)
"""


def node_jobs(tmp: Path) -> list[dict[str, Any]]:
    """Every example node's tokens, and the same as a --config file."""
    jobs: list[dict[str, Any]] = []
    for inventory in EXAMPLES:
        try:
            cluster = plan(load_inventory(inventory))
        except Exception as error:  # reported per inventory by the test below
            problems = getattr(error, "problems", None) or [error]
            reason = "; ".join(str(getattr(p, "message", p)) for p in problems)
            jobs.append({"id": f"{inventory.name}:load", "argv": [], "load_error": reason})
            continue
        for group in cluster.serving_groups:
            for node in group.nodes:
                tokens = list(node.server_args)
                name = f"{inventory.name}:{group.name}:{node.host}"
                jobs.append({"id": f"{name}:tokens", "argv": tokens})
                try:
                    config = tokens_to_config(tokens)
                except ValueError as error:
                    jobs.append({"id": f"{name}:config", "argv": [], "config_error": str(error)})
                    continue
                path = tmp / f"{name.replace(':', '_')}.yaml"
                path.write_text(yaml.safe_dump(config), encoding="utf-8")
                jobs.append({"id": f"{name}:config", "argv": ["--config", str(path)]})
    return jobs


def negative_jobs(tmp: Path) -> list[dict[str, Any]]:
    """Cases SGLang must refuse, proving a bad flag cannot slip through this test."""
    underscore = tmp / "underscore.yaml"
    underscore.write_text("model-path: /m\ntp_size: 2\n", encoding="utf-8")
    unknown_key = tmp / "unknown.yaml"
    unknown_key.write_text("model-path: /m\ncuda-graph-max-bz: 8\n", encoding="utf-8")
    deprecated = tmp / "deprecated.yaml"
    deprecated.write_text("model-path: /m\nenable-dp-attention: true\n", encoding="utf-8")
    return [
        {"id": "neg:typo", "argv": ["--model-path", "/m", "--tp-sizee", "2"]},
        {"id": "neg:removed", "argv": ["--model-path", "/m", "--cuda-graph-max-bs", "8"]},
        {"id": "neg:type", "argv": ["--model-path", "/m", "--tp-size", "x"]},
        {"id": "neg:underscore-key", "argv": ["--config", str(underscore)]},
        {"id": "neg:unknown-key", "argv": ["--config", str(unknown_key)]},
        {"id": "neg:deprecated-key", "argv": ["--config", str(deprecated)]},
        {"id": "neg:ambiguous-prefix", "argv": ["--model-path", "/m", "--enable"]},
    ]


PARITY_ARGV = [
    ["--model-path", "/m"],
    ["--model-path", "/m", "--tp-size", "16", "--enable-metrics", "--context-length", "64k"],
    ["--model", "/m", "--ep", "8", "--attn-dp-size", "8", "--cuda-graph-bs-decode", "1", "2"],
    ["--model-path", "/m", "--enable-dp-attention", "--disable-cuda-graph"],
    ["--model-path", "/m", "--no-enable-tf32-matmul", "--monokernel-backend", "amd"],
    ["--model-path", "/m", "--lora-paths", "a=/x", '{"lora_name": "b", "lora_path": "/y"}'],
    ["--model-path", "/m", "--cuda-graph-config", '{"decode": {"max_bs": 64}}'],
    ["--model-path", "/m", "--json-model-override-args", '{"a": 1}', "--numa-node", "0", "1"],
    # Unambiguous prefixes, which SGLang's argparse accepts (its docs write `--tp 8`).
    ["--model-path", "/m", "--tp", "2", "--mem-frac", "0.8"],
]
PREFIX_JOB = f"parity:{len(PARITY_ARGV) - 1}"


@pytest.fixture(scope="module")
def sglang(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("sglang-parse")
    jobs = node_jobs(tmp) + negative_jobs(tmp)
    jobs += [{"id": f"parity:{i}", "argv": argv} for i, argv in enumerate(PARITY_ARGV)]
    runnable = [j for j in jobs if "load_error" not in j and "config_error" not in j]
    assert SGLANG_PYTHON is not None
    result = subprocess.run(
        [SGLANG_PYTHON, "-c", SGLANG_SIDE],
        input=json.dumps(runnable),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SGLANG_", "SGL_"))},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"jobs": {j["id"]: j for j in jobs}, "results": json.loads(result.stdout)}


def test_catalog_equals_what_sglangs_parser_says() -> None:
    assert SGLANG_PYTHON is not None
    dumped = subprocess.run(
        [SGLANG_PYTHON, str(ROOT / "tools/dump_sglang_flags.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(dumped.stdout) == catalog_data(), (
        "src/sglfleet_sglang/sglang_0_5_23_flags.json is stale: regenerate it with"
        " tools/dump_sglang_flags.py"
    )


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda p: p.name)
def test_example_inventory_flags_parse_in_sglang(inventory: Path, sglang: dict[str, Any]) -> None:
    jobs = {k: v for k, v in sglang["jobs"].items() if k.startswith(f"{inventory.name}:")}
    load = jobs.get(f"{inventory.name}:load")
    assert load is None, f"inventory does not load/plan: {load and load['load_error']}"
    assert jobs, "no serving nodes planned"
    results = sglang["results"]
    for job_id, job in jobs.items():
        assert "config_error" not in job, f"{job_id}: {job.get('config_error')}"
        outcome = results[job_id]
        assert outcome["ok"], f"SGLang 0.5.23 rejects {job_id}: {outcome['error']}"
        if job_id.endswith(":config"):
            from_tokens = results[job_id.removesuffix(":config") + ":tokens"]["args"]
            assert outcome["args"] == from_tokens, f"{job_id}: --config differs from the tokens"


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("neg:typo", "unrecognized arguments: --tp-sizee"),
        ("neg:removed", "ambiguous option: --cuda-graph-max-bs"),
        ("neg:type", "invalid int value"),
        ("neg:underscore-key", "unrecognized arguments: --tp_size"),
        ("neg:unknown-key", "unrecognized arguments: --cuda-graph-max-bz"),
        ("neg:deprecated-key", "Unsupported config option 'enable_dp_attention'"),
        ("neg:ambiguous-prefix", "ambiguous option: --enable"),
    ],
)
def test_sglang_rejects_bad_flags(job_id: str, message: str, sglang: dict[str, Any]) -> None:
    outcome = sglang["results"][job_id]
    assert not outcome["ok"]
    assert message in outcome["error"]


def test_sglfleet_reads_flag_spellings_as_sglang_does(sglang: dict[str, Any]) -> None:
    """Prefixes SGLang accepts name the same flags in sglfleet's checks; an ambiguous one is
    refused by both."""
    outcome = sglang["results"][PREFIX_JOB]
    assert outcome["ok"], outcome
    assert (outcome["args"]["tp_size"], outcome["args"]["mem_fraction_static"]) == (2, 0.8)
    ours = tokens_to_config(["--tp", "2", "--mem-frac", "0.8"])
    assert ours == {"tp-size": 2, "mem-fraction-static": 0.8}
    assert not sglang["results"]["neg:ambiguous-prefix"]["ok"]
    with pytest.raises(ServerConfigError, match="ambiguous"):
        tokens_to_config(["--enable"])


def _rehearsal(argv: list[str]) -> dict[str, Any] | None:
    catalog = load_catalog()
    try:
        merged = merge_config_with_args(argv, catalog)
        namespace = build_parser(catalog).parse_args(merged)
    except (SystemExit, ValueError):
        return None
    values = vars(namespace)
    values.pop("config", None)
    return json.loads(json.dumps(values))


def test_rehearsal_parser_agrees_with_sglang(
    sglang: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Same accept/reject decisions, and the same value for every field SGLang's parser sets."""
    for job_id, outcome in sglang["results"].items():
        ours = _rehearsal(sglang["jobs"][job_id]["argv"])
        capsys.readouterr()
        assert (ours is not None) == outcome["ok"], f"{job_id}: rehearsal disagrees on validity"
        if ours is None:
            continue
        theirs = outcome["args"]
        assert len(set(ours) & set(theirs)) > 400, f"{job_id}: too few shared fields to compare"
        mismatched = {
            key: (ours[key], theirs[key])
            for key in ours
            if key in theirs and ours[key] != theirs[key]
        }
        assert not mismatched, f"{job_id}: {mismatched}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
