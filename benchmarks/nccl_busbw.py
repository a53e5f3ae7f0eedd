#!/usr/bin/env python3
"""All-reduce bus bandwidth of the NCCL preflight against a plain torch.distributed reference.

On a machine with 2 or more GPUs (`--run`, or by default when torch sees them) it runs, in one go:
  1. the preflight bench (roles/nccl_tuning/files/sglfleet-allreduce-bench, all local GPUs);
  2. a reference: a minimal all_reduce loop written here, timed with the host clock;
  3. deliberately broken settings (P2P off; P2P and SHM off; a bogus NCCL_SOCKET_IFNAME);
then judges each with sglfleet.preflight.nccl and writes everything to --out as JSON.

Without GPUs it prints the run recorded in docs/fabric.md (and says so).
The last line is the headline: preflight bus bandwidth / NVLink line rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sglfleet.hardware import line_rate  # noqa: E402
from sglfleet.preflight import nccl as preflight  # noqa: E402
from sglfleet.ui.preflight import bandwidth_table  # noqa: E402

BENCH = ROOT / "roles" / "nccl_tuning" / "files" / "sglfleet-allreduce-bench"
DOC = ROOT / "docs" / "fabric.md"
BEGIN, END = "<!-- nccl-busbw-results:begin -->", "<!-- nccl-busbw-results:end -->"
SIZES = [1 << p for p in range(20, 33, 2)]  # 1 MiB .. 4 GiB, factor 4 (as the bench's default)

BROKEN = {
    "p2p-off": ["NCCL_P2P_DISABLE=1"],
    "p2p-shm-off": ["NCCL_P2P_DISABLE=1", "NCCL_SHM_DISABLE=1"],
    "bogus-ifname": ["NCCL_SOCKET_IFNAME=bogus0"],
}


def _reference_worker(rank: int, world: int, port: int, out: str) -> None:
    """A plain all_reduce loop: no events, no NCCL logging, the host clock around synchronize()."""
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    rows = []
    for nbytes in SIZES:
        x = torch.ones(nbytes // 2, dtype=torch.bfloat16, device="cuda")
        iters = 20 if nbytes >= (64 << 20) else 40
        for _ in range(5):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        dist.barrier()
        start = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / iters
        algbw = nbytes / seconds / 1e9
        rows.append(
            {
                "bytes": nbytes,
                "time_us": round(seconds * 1e6, 2),
                "algbw_gbps": round(algbw, 3),
                "busbw_gbps": round(algbw * 2 * (world - 1) / world, 3),
            }
        )
    if rank == 0:
        Path(out).write_text(json.dumps(rows))
    dist.destroy_process_group()


def run_reference(world: int) -> dict[str, Any]:
    import torch.multiprocessing as mp

    out = tempfile.mktemp(suffix=".json")
    mp.spawn(_reference_worker, args=(world, 29555, out), nprocs=world, join=True)
    return {
        "name": "reference",
        "tool": "plain torch.distributed loop",
        "ok": True,
        "world_size": world,
        "rows": json.loads(Path(out).read_text()),
    }


def run_bench(name: str, sets: list[str]) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH), "--mode", "local", "--tool", "torch", "--name", name]
    argv += ["--timeout", "120", "--env-file", "/nonexistent"]
    for item in sets:
        argv += ["--set", item]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=400, check=False)
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = {"name": name, "ok": False, "error": (proc.stdout + proc.stderr)[-2000:], "rows": []}
    doc["exit_code"] = proc.returncode
    return doc


def machine() -> dict[str, Any]:
    def smi(query: str) -> list[str]:
        try:
            out = subprocess.run(
                ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except OSError:
            return []
        return [line.strip() for line in out.splitlines() if line.strip()]

    try:
        topo = subprocess.run(
            ["nvidia-smi", "topo", "-m"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        topo = ""
    import torch

    return {
        "gpus": smi("name"),
        "driver": (smi("driver_version") or ["?"])[0],
        "topology": topo.strip(),
        "torch": torch.__version__,
        "nccl": ".".join(str(v) for v in torch.cuda.nccl.version()),
        "kind": os.environ.get("SGLFLEET_DEVICE_KIND", ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def judge(doc: dict[str, Any], gpu_model: str | None) -> dict[str, Any]:
    thresholds = preflight.thresholds_from_variables({}, gpu_model)
    context = preflight.Context(host=str(doc.get("name") or "run"), scope="node")
    checks = preflight.evaluate(doc, thresholds, context)
    return preflight.summary(doc, checks, thresholds, context)


def device_run() -> dict[str, Any]:
    import torch

    world = torch.cuda.device_count()
    info = machine()
    runs: dict[str, dict[str, Any]] = {"bench": run_bench("bench", [])}
    runs["reference"] = run_reference(world)
    for name, sets in BROKEN.items():
        runs[name] = run_bench(name, sets)
    gpu = info["gpus"][0] if info["gpus"] else None
    verdicts = {name: judge(doc, gpu) for name, doc in runs.items() if name != "reference"}
    large = preflight.DEFAULT_LARGE_MESSAGE_BYTES
    return {
        "machine": info,
        "runs": runs,
        "verdicts": verdicts,
        "comparison": preflight.compare_to_reference(runs["bench"], runs["reference"], large),
    }


def compact(document: dict[str, Any]) -> dict[str, Any]:
    """What docs/fabric.md keeps of a device run: rows, env, NCCL's transports, verdicts."""
    keep_run = ("name", "tool", "ok", "error", "world_size", "nccl_version", "rows", "env")
    runs = {}
    for name, doc in document["runs"].items():
        slim = {k: doc[k] for k in keep_run if k in doc}
        if isinstance(slim.get("error"), str):
            slim["error"] = slim["error"][-400:]
        log = doc.get("nccl_log") or {}
        slim["nccl_log"] = {
            k: log[k]
            for k in ("transports", "networks", "no_socket_interface", "warnings", "gdr_in_use")
            if k in log
        }
        if isinstance(slim["nccl_log"].get("warnings"), list):
            slim["nccl_log"]["warnings"] = slim["nccl_log"]["warnings"][:3]
        node = doc.get("node") or {}
        slim["node"] = {
            k: node[k]
            for k in ("hostname", "peermem_loaded", "memlock", "dev_shm_bytes")
            if k in node
        }
        runs[name] = slim
    verdicts = {
        name: {k: v[k] for k in ("ok", "peak_busbw_gbps", "fraction_of_line_rate", "causes")}
        for name, v in document["verdicts"].items()
    }
    return {
        "machine": document["machine"],
        "runs": runs,
        "verdicts": verdicts,
        "comparison": document["comparison"],
    }


def recorded() -> dict[str, Any] | None:
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    match = re.search(re.escape(BEGIN) + r"\s*```json\n(.*?)```\s*" + re.escape(END), text, re.S)
    return json.loads(match.group(1)) if match else None


def report(document: dict[str, Any], source: str) -> None:
    info = document["machine"]
    gpu = info["gpus"][0] if info["gpus"] else None
    rate, rate_source = line_rate(gpu)
    print(f"# {source}")
    print(f"# machine: {len(info['gpus'])} x {gpu}, driver {info['driver']}, NCCL {info['nccl']}")
    for name, doc in document["runs"].items():
        print(f"\n## {name}: {doc.get('tool', '')}{'' if doc.get('ok') else ' (FAILED)'}")
        if doc.get("rows"):
            print(bandwidth_table(asdict(r) for r in preflight.table(doc, rate)))
        verdict = document["verdicts"].get(name)
        if verdict is not None:
            state = "PASS" if verdict["ok"] else "FAIL"
            print(f"verdict: {state}" + "".join(f"\n  cause: {c}" for c in verdict["causes"]))
    comparison = document["comparison"]
    print(
        f"\npreflight vs reference: {comparison['bench_busbw_gbps']} vs"
        f" {comparison['reference_busbw_gbps']} GB/s, ratio {comparison['ratio']}"
        f" ({'within' if comparison['within_10_percent'] else 'NOT within'} 10%)"
    )
    peak = comparison["bench_busbw_gbps"]
    if peak is None or rate is None:
        print("headline: no bus bandwidth/line rate ratio available")
        return
    print(
        f"headline: all-reduce bus bandwidth / NVLink line rate = {peak / rate:.3f}"
        f" ({peak:.1f} of {rate:.0f} GB/s; {rate_source}; {len(info['gpus'])} x {gpu})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="measure now (needs 2+ GPUs)")
    parser.add_argument("--out", default="", help="write the full device-run JSON here")
    parser.add_argument("--compact-out", default="", help="write what docs/fabric.md keeps here")
    args = parser.parse_args()
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        pass
    if args.run or gpus >= 2:
        if gpus < 2:
            print("error: --run needs 2 or more GPUs; this machine has", gpus, file=sys.stderr)
            return 2
        document = device_run()
        if args.out:
            Path(args.out).write_text(json.dumps(document, indent=1))
        slim = compact(document)
        if args.compact_out:
            Path(args.compact_out).write_text(json.dumps(slim, indent=1))
        report(slim, "measured now")
        return 0
    saved = recorded()
    if saved is None:
        print(f"error: no GPU here and no recorded run in {DOC}", file=sys.stderr)
        return 2
    report(
        saved,
        f"no GPU here: showing the device run recorded in {DOC.relative_to(ROOT)}"
        f" ({saved['machine'].get('date', '?')})",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
