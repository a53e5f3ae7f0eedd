#!/usr/bin/env python3
"""Benchmark: sglfleet-stage's verified parallel staging against a plain sequential copy.

Generates --size-gb of model files (real safetensors, hub-format manifest), then measures on the
same data, one after another:
  1. plain sequential copy (shutil.copyfile, file by file)        -> copy baseline
  2. sglfleet-stage stage with 1 job   (copy + SHA-256 + CRC32 blocks, verify, rename)
  3. sglfleet-stage stage with --jobs  (the same, files in parallel)
  4. single-threaded SHA-256 of every file                         -> verification baseline
  5. sglfleet-stage check --mode full with --jobs                  (parallel re-hash)
  6. sglfleet-stage check --mode sample and quick                  (the cheap per-run checks)
Page cache is dropped before each step when possible (root, /proc/sys/vm/drop_caches writable);
the table says whether it was. The last line is the headline ratio.

Usage: PYTHONPATH=src python3 benchmarks/stage_weights.py [--size-gb 20] [--dir /var/tmp/...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sglfleet.weights import generate_model_dir
from sglfleet_stage.core import RunOptions, check, stage
from sglfleet_stage.manifest import MANIFEST_NAME, load_manifest


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object], cold: bool) -> tuple[float, bool]:
    dropped = drop_caches() if cold else False
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, dropped


def sequential_copy(source: Path, dest: Path, files: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, dest / name)
        with (dest / name).open("rb+") as handle:
            os.fsync(handle.fileno())  # stage() fsyncs too: compare like with like


def single_sha256(directory: Path, files: list[str]) -> None:
    for name in files:
        digest = hashlib.sha256()
        with (directory / name).open("rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=20.0, help="total size of the model")
    parser.add_argument("--file-gb", type=float, default=1.0, help="size of one shard")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/sglfleet-bench-weights"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--warm", action="store_true", help="do not drop the page cache")
    args = parser.parse_args()

    files_count = max(1, round(args.size_gb / args.file_gb))
    need = 2 * args.size_gb * 1e9 + 2e9
    args.dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.dir).free
    if free < need:
        print(
            f"Error: {args.dir} has {free / 1e9:.1f} GB free; the benchmark needs "
            f"{need / 1e9:.1f} GB (source + one copy at a time).\n"
            "Hint: pass --dir on a larger filesystem or a smaller --size-gb",
            file=sys.stderr,
        )
        return 2
    source = args.dir / "source" / "bench-model"
    dest = args.dir / "dest"
    shutil.rmtree(dest, ignore_errors=True)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"python {platform.python_version()}; data: {args.dir}",
        flush=True,
    )
    if not (source / MANIFEST_NAME).exists():
        start = time.perf_counter()
        generate_model_dir(
            source, name="bench-model", files=files_count, file_mb=args.file_gb * 1000
        )
        print(f"generated {files_count} shards in {time.perf_counter() - start:.0f} s", flush=True)
    entries = load_manifest(source / MANIFEST_NAME)
    names = [e.path for e in entries]
    total = sum(e.size for e in entries)
    cold = not args.warm
    rows: list[tuple[str, float, bool]] = []

    seconds, dropped = timed(lambda: sequential_copy(source, dest / "cp", names), cold)
    rows.append(("plain sequential copy (shutil.copyfile + fsync)", seconds, dropped))
    shutil.rmtree(dest / "cp")

    opts1 = RunOptions(mode="quick", jobs=1, progress=False, reserve_bytes=0)
    seconds, dropped = timed(lambda: stage(source, dest / "j1", opts1), cold)
    rows.append(("sglfleet-stage stage, 1 job (copy+verify)", seconds, dropped))
    shutil.rmtree(dest / "j1")

    optsn = RunOptions(mode="quick", jobs=args.jobs, progress=False, reserve_bytes=0)
    seconds, dropped = timed(lambda: stage(source, dest / "jn", optsn), cold)
    rows.append((f"sglfleet-stage stage, {args.jobs} jobs (copy+verify)", seconds, dropped))

    seconds, dropped = timed(lambda: single_sha256(dest / "jn", names), cold)
    rows.append(("single-threaded SHA-256 of every file", seconds, dropped))

    def full_check() -> None:
        problems = check(dest / "jn", "full", jobs=args.jobs)
        assert not problems, problems

    seconds, dropped = timed(full_check, cold)
    rows.append((f"sglfleet-stage check --mode full, {args.jobs} jobs", seconds, dropped))

    for mode in ("sample", "quick"):
        seconds, dropped = timed(lambda m=mode: check(dest / "jn", m, jobs=args.jobs), cold)
        rows.append((f"sglfleet-stage check --mode {mode}", seconds, dropped))

    width = max(len(r[0]) for r in rows)
    print(f"\n{total / 1e9:.1f} GB in {len(names)} files\n")
    print(f"{'step':<{width}}  {'seconds':>8}  {'GB/s':>6}  cache")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 6}  -----")
    for label, seconds, dropped in rows:
        print(
            f"{label:<{width}}  {seconds:8.2f}  {total / 1e9 / seconds:6.2f}  "
            f"{'cold' if dropped else 'warm'}"
        )
    copy_s, stage1_s, stagen_s, sha_s, full_s = (r[1] for r in rows[:5])
    print(
        f"\nparallelism buys: staging {stage1_s / stagen_s:.2f}x (1 -> {args.jobs} jobs), "
        f"verification {sha_s / full_s:.2f}x (single-thread SHA-256 -> {args.jobs} jobs)"
    )
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    print(
        f"headline: verified staging runs at {copy_s / stagen_s:.2f}x the throughput of a plain "
        f"sequential copy; full verification at {sha_s / full_s:.2f}x single-threaded SHA-256"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
