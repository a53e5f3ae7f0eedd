"""Verify, stage and check model weights. Standard library only: runs on the node's python3."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sglfleet_stage.manifest import (
    MANIFEST_NAME,
    Expected,
    git_blob_header,
    load_manifest,
    manifest_digest,
)

MARKER_NAME = ".sglfleet-verified.json"
MARKER_FORMAT = "sglfleet-verified/1"
PART_SUFFIX = ".sglfleet-part"
# CRC32 per 16 MiB block, recorded at staging: `sample` mode re-reads a few blocks per file.
BLOCK_SIZE = 16 << 20
READ_SIZE = 8 << 20
MODES = ("quick", "sample", "full")
SAMPLE_BLOCKS = 2  # random blocks per file in `sample` mode, besides the first and the last

T = TypeVar("T")
R = TypeVar("R")


class StageError(Exception):
    """Something the operator must fix; the message names the file, host and fix."""

    exit_code = 1


class NoSpaceError(StageError):
    exit_code = 3


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class FileRecord:
    """What was verified about one file: its digest and the size and mtime it had then."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    verified_at: str
    block_crc32: list[int]
    git_oid: str | None = None

    def matches(self, expected: Expected) -> bool:
        if expected.size != self.size:
            return False
        if expected.sha256:
            return expected.sha256 == self.sha256
        return expected.git_oid == self.git_oid


@dataclass
class Marker:
    source: str
    manifest_sha256: str
    verified_at: str
    host: str
    mode: str
    files: list[FileRecord]
    block_size: int = BLOCK_SIZE
    format: str = MARKER_FORMAT

    def by_path(self) -> dict[str, FileRecord]:
        return {r.path: r for r in self.files}


def read_marker(directory: Path) -> Marker | None:
    """The marker of `directory`, or None when absent or unreadable (then nothing is trusted)."""
    try:
        data = json.loads((directory / MARKER_NAME).read_text(encoding="utf-8"))
        if data.get("format") != MARKER_FORMAT or data.get("block_size") != BLOCK_SIZE:
            return None
        files = [FileRecord(**f) for f in data.pop("files")]
        return Marker(files=files, **data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + PART_SUFFIX)
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_marker(directory: Path, marker: Marker) -> None:
    write_json_atomic(directory / MARKER_NAME, asdict(marker))


def remove_marker(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / MARKER_NAME).unlink()
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Progress:
    """Bytes done over bytes planned, printed to stderr at most every `interval` seconds."""

    def __init__(self, label: str, total: int, files: int, *, enabled: bool, interval: float = 5.0):
        self.label = label
        self.total = total
        self.files = files
        self.enabled = enabled
        self.interval = interval
        self.done = 0
        self.files_done = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            now = time.monotonic()
            if self.enabled and now - self._last >= self.interval:
                self._last = now
                self._print(now)

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def _print(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        print(
            f"sglfleet-stage: {self.label} {self.done / 1e9:.1f}/{self.total / 1e9:.1f} GB "
            f"({pct:.0f}%, {rate / 1e6:.0f} MB/s), files {self.files_done}/{self.files}",
            file=sys.stderr,
            flush=True,
        )

    def finish(self) -> None:
        if self.enabled and self.total:
            self._print(time.monotonic())


class Digester:
    """SHA-256 (always), git blob SHA-1 (for non-LFS files) and per-block CRC32, in one pass."""

    def __init__(self, size: int, want_git: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.git = hashlib.sha1(usedforsecurity=False) if want_git else None
        if self.git is not None:
            self.git.update(git_blob_header(size))
        self.blocks: list[int] = []
        self._crc = 0
        self._fill = 0
        self.length = 0

    def update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        if self.git is not None:
            self.git.update(data)
        self.length += len(data)
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK_SIZE - self._fill)
            self._crc = zlib.crc32(view[:take], self._crc)
            self._fill += take
            if self._fill == BLOCK_SIZE:
                self.blocks.append(self._crc)
                self._crc, self._fill = 0, 0
            view = view[take:]

    def finish(self) -> None:
        if self._fill:
            self.blocks.append(self._crc)
            self._crc, self._fill = 0, 0

    def matches(self, expected: Expected) -> bool:
        if self.length != expected.size:
            return False
        if expected.sha256:
            return self.sha256.hexdigest() == expected.sha256
        return self.git is not None and self.git.hexdigest() == expected.git_oid

    def describe(self, expected: Expected) -> str:
        got = self.sha256.hexdigest() if expected.sha256 else (self.git and self.git.hexdigest())
        return (
            f"size {self.length} (expected {expected.size}), "
            f"{'sha256' if expected.sha256 else 'git blob'} {got} (expected "
            f"{expected.sha256 or expected.git_oid})"
        )

    def record(self, expected: Expected, stat: os.stat_result) -> FileRecord:
        return FileRecord(
            path=expected.path,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=self.sha256.hexdigest(),
            verified_at=now_iso(),
            block_crc32=list(self.blocks),
            git_oid=self.git.hexdigest() if self.git is not None else None,
        )


def digest_file(path: Path, expected: Expected, progress: Progress | None = None) -> Digester:
    digester = Digester(expected.size, want_git=not expected.sha256)
    with path.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digester.update(chunk)
            if progress:
                progress.add(len(chunk))
    digester.finish()
    return digester


def sample_blocks_ok(path: Path, record: FileRecord, rng: random.Random, count: int) -> bool:
    """Re-read the first, the last and `count` random blocks; compare with the staged CRC32s."""
    blocks = len(record.block_crc32)
    if blocks == 0:
        return record.size == 0
    chosen = {0, blocks - 1}
    middle = list(range(1, blocks - 1))
    chosen.update(rng.sample(middle, min(count, len(middle))))
    with path.open("rb") as handle:
        for index in sorted(chosen):
            handle.seek(index * BLOCK_SIZE)
            crc, left = 0, BLOCK_SIZE
            while left > 0:
                chunk = handle.read(min(READ_SIZE, left))
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
            if crc != record.block_crc32[index]:
                return False
    return True


@dataclass
class Outcome:
    """One file's fate in a run: kept as verified, or (re)copied, and why."""

    path: str
    record: FileRecord | None = None
    reason: str = ""  # why it must be copied; empty when the existing file is good
    copied: bool = False
    refreshed: bool = False  # re-verified by content (size/mtime drifted or no record)
    problem: str = ""


def assess(
    path: Path,
    expected: Expected,
    record: FileRecord | None,
    mode: str,
    rng: random.Random,
    progress: Progress | None = None,
) -> Outcome:
    """Is the file at `path` a verified copy of `expected`? Hash it in full only when needed."""
    out = Outcome(expected.path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        out.reason = "missing"
        return out
    if stat.st_size != expected.size:
        out.reason = f"size {stat.st_size}, expected {expected.size} (truncated or changed)"
        return out
    trusted = (
        record is not None
        and record.matches(expected)
        and record.mtime_ns == stat.st_mtime_ns
        and mode != "full"
    )
    if trusted and record is not None:
        if mode == "sample" and not sample_blocks_ok(path, record, rng, SAMPLE_BLOCKS):
            out.reason = "sampled block differs from what was verified (corrupted in place)"
            return out
        out.record = record
        return out
    # Full mode, no record, or size/mtime drifted: the content decides, by its full digest.
    digester = digest_file(path, expected, progress)
    if not digester.matches(expected):
        out.reason = f"content differs from the manifest: {digester.describe(expected)}"
        return out
    new_record = digester.record(expected, path.stat())
    if record is not None and _same_verified(record, new_record):
        out.record = record
    else:
        out.record, out.refreshed = new_record, True
    return out


def _same_verified(old: FileRecord, new: FileRecord) -> bool:
    keep = ("path", "size", "mtime_ns", "sha256", "block_crc32", "git_oid")
    return all(getattr(old, k) == getattr(new, k) for k in keep)


def copy_verified(
    source: Path, dest: Path, expected: Expected, progress: Progress | None = None
) -> FileRecord:
    """Copy into `<dest>.sglfleet-part` (resuming a previous part), verify, rename atomically."""
    part = dest.with_name(dest.name + PART_SUFFIX)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        resume_from = 0
        if part.exists():
            size = part.stat().st_size
            if size <= expected.size and attempt == 1:
                resume_from = size
            else:
                part.unlink()
        digester = Digester(expected.size, want_git=not expected.sha256)
        with part.open("ab" if resume_from else "wb") as out:
            if resume_from:
                # Hash what is already there: the final digest covers the whole file.
                with part.open("rb") as prefix:
                    left = resume_from
                    while left > 0 and (chunk := prefix.read(min(READ_SIZE, left))):
                        digester.update(chunk)
                        left -= len(chunk)
                if progress:
                    progress.add(resume_from)
            try:
                src = source.open("rb")
            except FileNotFoundError:
                raise StageError(
                    f"{expected.path}: missing at the source {source}; "
                    "re-run the download (or restore the mirror)"
                ) from None
            with src:
                src.seek(resume_from)
                while chunk := src.read(READ_SIZE):
                    digester.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress.add(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        digester.finish()
        if digester.matches(expected):
            os.replace(part, dest)
            return digester.record(expected, dest.stat())
        part.unlink()
        if not resume_from:
            break  # a fresh copy failed too: the source itself is bad
    raise StageError(
        f"{expected.path}: the source {source} does not match the manifest: "
        f"{digester.describe(expected)}. The copy on shared storage (or the mirror) is corrupt "
        "or from another revision: re-run the download, or restore the file on the mirror"
    )


def parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int) -> list[R | BaseException]:
    """Run `fn` over `items` on `jobs` threads (hashlib, zlib and file I/O release the GIL)."""

    def guarded(item: T) -> R | BaseException:
        try:
            return fn(item)
        except (OSError, StageError) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(guarded, items))


def free_bytes(directory: Path) -> int:
    probe = directory
    while not probe.exists():
        probe = probe.parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize


def part_size(path: Path) -> int:
    try:
        return path.with_name(path.name + PART_SUFFIX).stat().st_size
    except FileNotFoundError:
        return 0


def default_jobs() -> int:
    return max(2, min(8, os.cpu_count() or 2))


@dataclass
class RunOptions:
    mode: str = "quick"
    jobs: int = field(default_factory=default_jobs)
    reserve_bytes: int = 1 << 30
    space_variable: str = "model_weights_local_dir"
    progress: bool = True
    prune: bool = False
    seed: int | None = None
    dry_run: bool = False  # assess and report only: what a real run would copy (check mode)


def _fail_on(results: list[Any], what: str) -> None:
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    if errors:
        raise StageError(f"{what} failed for {len(errors)} file(s):\n  " + "\n  ".join(errors))


def stage(
    source: Path, dest: Path, options: RunOptions, manifest: Path | None = None
) -> dict[str, Any]:
    """Make `dest` a verified copy of the files `source`'s manifest lists; write the marker last.

    Files already in `dest` are kept when they check out (by `options.mode`); anything missing,
    truncated or corrupted is named and copied again. The marker is removed before any file is
    touched and written only once every file is verified, so `check` fails in between.
    """
    started = time.monotonic()
    manifest_path = manifest or source / MANIFEST_NAME
    entries = load_manifest(manifest_path)
    if not options.dry_run:
        dest.mkdir(parents=True, exist_ok=True)
    marker = read_marker(dest)
    records = marker.by_path() if marker else {}
    rng = random.Random(options.seed)
    seeds = [rng.getrandbits(32) for _ in entries]

    checking = Progress("verifying", 0, len(entries), enabled=False)
    outcomes = parallel(
        lambda pair: assess(
            dest / pair[0].path,
            pair[0],
            records.get(pair[0].path),
            options.mode,
            random.Random(pair[1]),
            checking,
        ),
        list(zip(entries, seeds, strict=True)),
        options.jobs,
    )
    _fail_on(outcomes, "checking the staged files")
    assessed = [o for o in outcomes if isinstance(o, Outcome)]
    todo = [(e, o) for e, o in zip(entries, assessed, strict=True) if o.reason]

    if todo:
        needed = sum(e.size - part_size(dest / e.path) for e, _ in todo)
        free = free_bytes(dest)
        if free < needed + options.reserve_bytes:
            raise NoSpaceError(
                f"not enough free space on {socket.gethostname()} for {dest}: staging needs "
                f"{needed / 1e9:.1f} GB (+{options.reserve_bytes / 1e9:.1f} GB reserve), "
                f"{free / 1e9:.1f} GB free. Fix: free space there, or set "
                f"{options.space_variable} to a directory on a larger disk"
            )
    if options.dry_run:
        new_manifest = marker is None or marker.manifest_sha256 != manifest_digest(manifest_path)
        return {
            "changed": bool(todo) or new_manifest or any(o.refreshed for o in assessed),
            "dry_run": True,
            "dest": str(dest),
            "mode": options.mode,
            "files": len(entries),
            "copied": [e.path for e, _ in todo],
            "restaged": [
                {"path": e.path, "reason": o.reason} for e, o in todo if o.reason != "missing"
            ],
        }
    if todo:
        remove_marker(dest)
        progress = Progress(
            "staging", sum(e.size for e, _ in todo), len(todo), enabled=options.progress
        )

        def copy_one(pair: tuple[Expected, Outcome]) -> Outcome:
            entry, outcome = pair
            outcome.record = copy_verified(source / entry.path, dest / entry.path, entry, progress)
            outcome.copied = True
            progress.file_done()
            return outcome

        copied = parallel(copy_one, todo, options.jobs)
        progress.finish()
        _fail_on(copied, f"staging {source} to {dest} on {socket.gethostname()}")

    pruned = prune_extras(dest, entries) if options.prune else []
    new_manifest = marker is None or marker.manifest_sha256 != manifest_digest(manifest_path)
    changed = bool(todo) or any(o.refreshed for o in assessed) or new_manifest or bool(pruned)
    if changed:
        shutil.copyfile(manifest_path, dest / (MANIFEST_NAME + PART_SUFFIX))
        os.replace(dest / (MANIFEST_NAME + PART_SUFFIX), dest / MANIFEST_NAME)
        write_marker(
            dest,
            Marker(
                source=str(source),
                manifest_sha256=manifest_digest(manifest_path),
                verified_at=now_iso(),
                host=socket.gethostname(),
                mode=options.mode,
                files=[o.record for o in assessed if o.record is not None],
            ),
        )
    elapsed = time.monotonic() - started
    copied_bytes = sum(e.size for e, _ in todo)
    return {
        "changed": changed,
        "dest": str(dest),
        "mode": options.mode,
        "files": len(entries),
        "bytes": sum(e.size for e in entries),
        "copied": [e.path for e, _ in todo],
        "restaged": [
            {"path": e.path, "reason": o.reason} for e, o in todo if o.reason != "missing"
        ],
        "reverified": [o.path for o in assessed if o.refreshed],
        "pruned": pruned,
        "bytes_copied": copied_bytes,
        "seconds": round(elapsed, 3),
        "copy_mb_per_s": round(copied_bytes / 1e6 / elapsed, 1) if todo and elapsed else None,
    }


def prune_extras(dest: Path, entries: list[Expected]) -> list[str]:
    """Remove regular files the manifest does not list (an older revision's shards, stale parts)."""
    keep = {e.path for e in entries} | {MARKER_NAME, MANIFEST_NAME}
    removed = []
    for path in sorted(dest.rglob("*")):
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and not path.is_symlink() and rel not in keep:
            path.unlink()
            removed.append(rel)
    return removed


def verify_in_place(
    directory: Path, options: RunOptions, manifest: Path | None = None
) -> dict[str, Any]:
    """Verify a directory (shared storage after a download) against its manifest; record it.

    Returns the summary with `bad` listing every missing or mismatching file; writes the
    marker only when nothing is bad.
    """
    manifest_path = manifest or directory / MANIFEST_NAME
    entries = load_manifest(manifest_path)
    marker = read_marker(directory)
    records = marker.by_path() if marker else {}
    rng = random.Random(options.seed)
    results = parallel(
        lambda e: assess(
            directory / e.path, e, records.get(e.path), options.mode, random.Random(rng.random())
        ),
        entries,
        options.jobs,
    )
    _fail_on(results, f"verifying {directory}")
    outcomes = [o for o in results if isinstance(o, Outcome)]
    bad = [{"path": o.path, "reason": o.reason} for o in outcomes if o.reason]
    changed = False
    if not bad and (marker is None or any(o.refreshed for o in outcomes)):
        write_marker(
            directory,
            Marker(
                source=str(directory),
                manifest_sha256=manifest_digest(manifest_path),
                verified_at=now_iso(),
                host=socket.gethostname(),
                mode=options.mode,
                files=[o.record for o in outcomes if o.record is not None],
            ),
        )
        changed = True
    elif bad:
        remove_marker(directory)
    return {
        "changed": changed,
        "dir": str(directory),
        "mode": options.mode,
        "files": len(entries),
        "bad": bad,
        "reverified": [o.path for o in outcomes if o.refreshed],
    }


def check(directory: Path, mode: str = "quick", jobs: int | None = None) -> list[str]:
    """Problems that forbid serving from `directory`; empty when its weights are verified.

    `quick` (the unit's ExecStartPre) compares size and mtime with the marker; `sample` also
    re-reads a few blocks per file; `full` re-hashes everything against the marker's SHA-256.
    """
    marker = read_marker(directory)
    if marker is None:
        return [
            f"{directory}: no verification marker ({MARKER_NAME}): these weights were never "
            "verified, or staging is in progress or failed. Run `sglfleet up` to stage them"
        ]
    rng = random.Random()

    def one(record: FileRecord) -> str:
        path = directory / record.path
        try:
            stat = path.stat()
        except FileNotFoundError:
            return f"{path}: missing"
        if stat.st_size != record.size:
            return f"{path}: size {stat.st_size}, verified as {record.size}"
        if stat.st_mtime_ns != record.mtime_ns:
            return f"{path}: modified since it was verified (mtime changed)"
        if mode == "sample" and not sample_blocks_ok(
            path, record, random.Random(rng.random()), SAMPLE_BLOCKS
        ):
            return f"{path}: a sampled block differs from what was verified"
        if mode == "full":
            expected = Expected(record.path, record.size, record.sha256, None)
            if not digest_file(path, expected).matches(expected):
                return f"{path}: sha256 differs from what was verified"
        return ""

    results = parallel(one, marker.files, jobs or default_jobs())
    return [str(r) for r in results if r]
