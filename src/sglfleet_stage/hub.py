"""Download a pinned revision from Hugging Face or ModelScope into shared storage, verified.

The only module that imports a non-standard package: `huggingface_hub` (or `modelscope`), from
the small venv the `model_weights` role builds on the downloader node. Imported lazily, so the
rest of sglfleet_stage runs on the system python3.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
from pathlib import Path
from typing import Any

from sglfleet_stage.core import (
    NoSpaceError,
    RunOptions,
    StageError,
    free_bytes,
    verify_in_place,
    write_json_atomic,
)
from sglfleet_stage.manifest import MANIFEST_NAME, parse_manifest

TOKEN_ENV = {"huggingface": "HF_TOKEN", "modelscope": "MODELSCOPE_API_TOKEN"}


def read_token(hub: str, token_file: Path | None) -> str | None:
    """The hub token from a 0600 file or the task's environment; never from argv."""
    if token_file is not None:
        mode = token_file.stat().st_mode & 0o077
        if mode:
            raise StageError(f"{token_file} is readable by others: chmod 0600 it")
        return token_file.read_text(encoding="utf-8").strip() or None
    return os.environ.get(TOKEN_ENV[hub]) or None


def fetch_tree(hub: str, repo_id: str, revision: str, token: str | None) -> list[dict[str, Any]]:
    """The repository's file list at `revision`, in the Hugging Face tree API's JSON shape."""
    entries: list[dict[str, Any]] = []
    if hub == "huggingface":
        # lazy: optional dependency, installed only for this hub
        from huggingface_hub import HfApi  # type: ignore[import-not-found,unused-ignore]

        api = HfApi(token=token)
        for item in api.list_repo_tree(repo_id, revision=revision, recursive=True):
            if not hasattr(item, "size"):
                continue  # a folder
            entry: dict[str, Any] = {
                "type": "file",
                "oid": item.blob_id,
                "size": item.size,
                "path": item.path,
            }
            if item.lfs is not None:
                entry["lfs"] = {
                    "oid": item.lfs.sha256,
                    "size": item.lfs.size,
                    "pointerSize": item.lfs.pointer_size,
                }
            entries.append(entry)
    elif hub == "modelscope":
        # lazy: optional dependency, installed only for this hub
        from modelscope.hub.api import HubApi  # type: ignore[import-not-found,unused-ignore]

        api = HubApi()
        if token:
            api.login(token)
        for item in api.get_model_files(repo_id, revision=revision, recursive=True):
            if item.get("Type") == "tree":
                continue
            entries.append(
                {
                    "type": "file",
                    "path": item["Path"],
                    "size": int(item["Size"]),
                    "lfs": {"oid": item["Sha256"], "size": int(item["Size"])},
                }
            )
    else:
        raise StageError(f"unknown hub {hub!r}: use huggingface or modelscope")
    return sorted(entries, key=lambda e: str(e["path"]))


def _snapshot(
    hub: str,
    repo_id: str,
    revision: str,
    dest: Path,
    paths: list[str],
    token: str | None,
    jobs: int,
) -> None:
    patterns = [glob.escape(p) for p in paths]
    if hub == "huggingface":
        # lazy: optional dependency, installed only for this hub
        from huggingface_hub import snapshot_download

        snapshot_download(
            repo_id,
            revision=revision,
            local_dir=dest,
            allow_patterns=patterns,
            max_workers=jobs,
            token=token,
        )
    else:
        # lazy: optional dependency, installed only for this hub
        from modelscope.hub.snapshot_download import (  # type: ignore[import-not-found,unused-ignore]
            snapshot_download as ms_snapshot_download,
        )

        ms_snapshot_download(
            repo_id,
            revision=revision,
            local_dir=str(dest),
            allow_patterns=patterns,
            max_workers=jobs,
        )


def download(
    hub: str,
    repo_id: str,
    revision: str,
    dest: Path,
    options: RunOptions,
    token: str | None,
) -> dict[str, Any]:
    """Fetch the manifest, verify what `dest` holds, download only what is missing or bad."""
    dest.mkdir(parents=True, exist_ok=True)
    tree = fetch_tree(hub, repo_id, revision, token)
    entries = parse_manifest(tree)
    manifest_path = dest / MANIFEST_NAME
    new_manifest = True
    with contextlib.suppress(OSError, ValueError):
        new_manifest = json.loads(manifest_path.read_text(encoding="utf-8")) != tree
    if new_manifest:
        write_json_atomic(manifest_path, tree)
    first = verify_in_place(dest, options)
    wanted = [b["path"] for b in first["bad"]]
    if wanted:
        sizes = {e.path: e.size for e in entries}
        needed = sum(sizes[p] for p in wanted)
        free = free_bytes(dest)
        if free < needed + options.reserve_bytes:
            raise NoSpaceError(
                f"not enough free space on {socket.gethostname()} for {dest}: the download needs "
                f"{needed / 1e9:.1f} GB, {free / 1e9:.1f} GB free. Fix: free space on the shared "
                "storage, or set model_weights_shared_dir to a larger filesystem"
            )
        for path in wanted:
            # Remove bad files and the hub's local metadata, or the hub would call them current.
            for stale in (
                dest / path,
                dest / ".cache" / "huggingface" / "download" / f"{path}.metadata",
            ):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        _snapshot(hub, repo_id, revision, dest, wanted, token, options.jobs)
    second = verify_in_place(dest, RunOptions(mode="quick", jobs=options.jobs)) if wanted else first
    if second["bad"]:
        names = ", ".join(f"{b['path']} ({b['reason']})" for b in second["bad"])
        raise StageError(
            f"downloaded files on {socket.gethostname()} fail verification: {names}. "
            "Re-run to download them again; if it persists, the hub's copy or the pinned "
            "revision is wrong"
        )
    return {
        "changed": bool(wanted) or new_manifest or bool(first["changed"]),
        "dir": str(dest),
        "hub": hub,
        "repo_id": repo_id,
        "revision": revision,
        "files": len(entries),
        "downloaded": wanted,
        "found_bad": [b for b in first["bad"] if b["reason"] != "missing"],
    }
