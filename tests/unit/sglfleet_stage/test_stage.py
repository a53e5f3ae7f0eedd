"""sglfleet_stage: verify, resume, skip identical, corruption detection, free-space check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sglfleet.weights import generate_model_dir
from sglfleet_stage import core
from sglfleet_stage.core import MARKER_NAME, PART_SUFFIX, RunOptions, StageError, check, stage
from sglfleet_stage.manifest import MANIFEST_NAME, ManifestError, load_manifest, parse_manifest

SRC = Path(__file__).resolve().parents[3] / "src"
SHARD = "model-00002-of-00003.safetensors"


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    # 3 shards of ~40 MB: several 16 MiB blocks each, so sampling has a middle to pick from.
    return generate_model_dir(tmp_path / "mirror" / "m", name="m", files=3, file_mb=40, seed=1)


def opts(mode: str = "quick", **kw: object) -> RunOptions:
    return RunOptions(mode=mode, jobs=2, progress=False, **kw)  # type: ignore[arg-type]


def flip_byte(path: Path, offset: int, keep_mtime: bool = True) -> None:
    st = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_stage_copies_everything_and_writes_marker(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    result = stage(mirror, dest, opts())
    assert result["changed"] is True
    assert len(result["copied"]) == 6
    for entry in load_manifest(mirror / MANIFEST_NAME):
        assert (dest / entry.path).read_bytes() == (mirror / entry.path).read_bytes()
    marker = json.loads((dest / MARKER_NAME).read_text())
    assert {f["path"] for f in marker["files"]} == {
        e.path for e in load_manifest(dest / MANIFEST_NAME)
    }
    assert all(len(f["sha256"]) == 64 and f["verified_at"] for f in marker["files"])
    assert not list(dest.rglob(f"*{PART_SUFFIX}"))
    assert check(dest) == []


def test_second_run_skips_identical_files(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    marker_before = (dest / MARKER_NAME).read_bytes()
    for mode in ("quick", "sample", "full"):
        result = stage(mirror, dest, opts(mode))
        assert result["changed"] is False, mode
        assert result["copied"] == []
    assert (dest / MARKER_NAME).read_bytes() == marker_before


def test_identical_files_without_marker_are_hashed_not_copied(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    (dest / MARKER_NAME).unlink()
    result = stage(mirror, dest, opts())
    assert result["copied"] == []
    assert len(result["reverified"]) == 6
    assert check(dest) == []


def test_flipped_byte_same_mtime_caught_by_full_and_restaged(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    flip_byte(dest / SHARD, 20_000_000)  # a middle block, size and mtime kept
    assert check(dest, "quick") == []  # documented: quick trusts size+mtime
    problems = check(dest, "full")
    assert len(problems) == 1 and SHARD in problems[0]
    assert stage(mirror, dest, opts("quick"))["copied"] == []  # quick does not see it
    result = stage(mirror, dest, opts("full"))
    assert result["copied"] == [SHARD]
    assert result["restaged"][0]["path"] == SHARD
    assert (dest / SHARD).read_bytes() == (mirror / SHARD).read_bytes()
    assert check(dest, "full") == []


def test_flipped_byte_in_header_caught_by_sample(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    flip_byte(dest / SHARD, 12)  # inside the safetensors JSON header: always sampled
    assert any(SHARD in p for p in check(dest, "sample"))
    result = stage(mirror, dest, opts("sample", seed=3))
    assert result["copied"] == [SHARD]
    assert "sampled block" in result["restaged"][0]["reason"]


def test_flipped_byte_with_new_mtime_caught_by_quick(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    flip_byte(dest / SHARD, 20_000_000, keep_mtime=False)
    os.utime(dest / SHARD, ns=(0, (dest / SHARD).stat().st_mtime_ns + 10**9))
    assert any("mtime" in p for p in check(dest))
    result = stage(mirror, dest, opts("quick"))
    assert result["copied"] == [SHARD]
    assert check(dest, "full") == []


def test_truncated_file_named_by_check_and_restaged(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    os.truncate(dest / SHARD, 1000)
    problems = check(dest)
    assert problems and SHARD in problems[0] and "size 1000" in problems[0]
    result = stage(mirror, dest, opts())
    assert result["copied"] == [SHARD]
    assert "truncated" in result["restaged"][0]["reason"]


def test_marker_absent_means_not_verified(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    assert "no verification marker" in check(dest)[0]
    stage(mirror, dest, opts())
    (dest / MARKER_NAME).unlink()
    assert "no verification marker" in check(dest)[0]


def test_interrupted_copy_resumes_from_part(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "local" / "m"
    dest.mkdir(parents=True)
    data = (mirror / SHARD).read_bytes()
    (dest / (SHARD + PART_SUFFIX)).write_bytes(data[: 17 << 20])  # an interrupted copy
    reads: list[int] = []
    real_open = Path.open

    def spying_open(self: Path, mode: str = "r", *args: object, **kw: object) -> object:
        handle = real_open(self, mode, *args, **kw)  # type: ignore[call-overload]
        if self == mirror / SHARD and "r" in mode:
            original_seek = handle.seek
            handle.seek = lambda pos, *a: (reads.append(pos), original_seek(pos, *a))[1]
        return handle

    monkeypatch.setattr(Path, "open", spying_open)
    result = stage(mirror, dest, opts())
    monkeypatch.undo()
    assert SHARD in result["copied"]
    assert reads == [17 << 20]  # it continued where the part ended
    assert (dest / SHARD).read_bytes() == data
    assert not (dest / (SHARD + PART_SUFFIX)).exists()


def test_corrupt_part_is_discarded_and_recopied(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    dest.mkdir(parents=True)
    data = bytearray((mirror / SHARD).read_bytes()[: 5 << 20])
    data[100] ^= 0xFF
    (dest / (SHARD + PART_SUFFIX)).write_bytes(bytes(data))
    stage(mirror, dest, opts())
    assert (dest / SHARD).read_bytes() == (mirror / SHARD).read_bytes()
    assert check(dest, "full") == []


def test_corrupt_source_is_named_and_no_marker_written(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    flip_byte(mirror / SHARD, 30_000_000)
    with pytest.raises(StageError) as err:
        stage(mirror, dest, opts())
    assert SHARD in str(err.value) and "does not match the manifest" in str(err.value)
    assert not (dest / MARKER_NAME).exists()
    assert not (dest / SHARD).exists()
    assert not (dest / (SHARD + PART_SUFFIX)).exists()


def test_restage_removes_marker_before_touching_files(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    os.truncate(dest / SHARD, 10)
    flip_byte(mirror / SHARD, 30_000_000)  # the source went bad too: the re-stage must fail
    with pytest.raises(StageError):
        stage(mirror, dest, opts())
    assert "no verification marker" in check(dest)[0]


def test_free_space_check_names_host_variable_and_fix(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "free_bytes", lambda _: 50_000_000)
    with pytest.raises(core.NoSpaceError) as err:
        stage(mirror, tmp_path / "local" / "m", opts(space_variable="model_weights_local_dir"))
    message = str(err.value)
    assert "model_weights_local_dir" in message and "GB free" in message and "Fix:" in message
    assert os.uname().nodename in message
    assert not list((tmp_path / "local" / "m").iterdir())


def test_free_space_counts_only_what_is_missing(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    os.truncate(dest / "config.json", 1)
    monkeypatch.setattr(core, "free_bytes", lambda _: 2_000)
    assert stage(mirror, dest, opts(reserve_bytes=0))["copied"] == ["config.json"]


def test_prune_removes_files_of_another_revision(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    stage(mirror, dest, opts())
    (dest / "model-00009-of-00009.safetensors").write_bytes(b"old")
    assert stage(mirror, dest, opts(prune=True))["pruned"] == ["model-00009-of-00009.safetensors"]


def test_manifest_formats() -> None:
    hub = [
        {"type": "directory", "oid": "x", "size": 0, "path": "figures"},
        {"type": "file", "oid": "a" * 40, "size": 3, "path": "config.json"},
        {"type": "file", "oid": "b" * 40, "size": 9, "path": "w.safetensors",
         "lfs": {"oid": "c" * 64, "size": 9, "pointerSize": 134}},
    ]  # fmt: skip
    entries = parse_manifest(hub)
    assert [(e.path, e.sha256, e.git_oid) for e in entries] == [
        ("config.json", None, "a" * 40),
        ("w.safetensors", "c" * 64, "b" * 40),
    ]
    sglang = {"files": {"w.safetensors": {"sha256": "d" * 64, "size": 9}}}
    assert parse_manifest(sglang)[0].sha256 == "d" * 64
    with pytest.raises(ManifestError):
        parse_manifest([{"type": "file", "oid": "a", "size": 1, "path": "../etc/passwd"}])
    with pytest.raises(ManifestError):
        parse_manifest({"checksums": {"w": "d" * 64}})


def test_sglang_checksum_manifest_stages(mirror: Path, tmp_path: Path) -> None:
    files = {
        e.path: {"sha256": e.sha256 or core.digest_file(mirror / e.path, e).sha256.hexdigest(),
                 "size": e.size}
        for e in load_manifest(mirror / MANIFEST_NAME)
    }  # fmt: skip
    manifest = tmp_path / "checksums.json"
    manifest.write_text(json.dumps({"files": files}))
    dest = tmp_path / "local" / "m"
    assert len(stage(mirror, dest, opts(), manifest)["copied"]) == 6
    assert check(dest, "full") == []


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "sglfleet_stage", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_cli_check_exit_codes_name_the_file(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    staged = run_cli("stage", str(mirror), str(dest), "--quiet")
    assert staged.returncode == 0, staged.stderr
    assert json.loads(staged.stdout)["changed"] is True
    assert run_cli("check", str(dest)).returncode == 0
    os.truncate(dest / SHARD, 5)
    bad = run_cli("check", str(dest))
    assert bad.returncode == 1 and SHARD in bad.stderr


def test_cli_verify_in_place_lists_bad_files(mirror: Path) -> None:
    good = run_cli("verify", str(mirror), "--mode", "full")
    assert good.returncode == 0, good.stderr
    assert (mirror / MARKER_NAME).exists()
    flip_byte(mirror / SHARD, 1234)
    bad = run_cli("verify", str(mirror), "--mode", "full")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["bad"][0]["path"] == SHARD
    assert not (mirror / MARKER_NAME).exists()


def test_node_tool_uses_only_the_standard_library() -> None:
    # hub.py imports huggingface_hub lazily, inside functions; nothing else leaves the stdlib.
    code = (
        "before = set(sys.modules); "
        "import sglfleet_stage.cli, sglfleet_stage.core, sglfleet_stage.hub; "
        "bad = [m for m in set(sys.modules) - before if m.split('.')[0] not in "
        "sys.stdlib_module_names and not m.startswith('sglfleet_stage')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(SRC)!r}); {code}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_reports_and_writes_nothing(mirror: Path, tmp_path: Path) -> None:
    dest = tmp_path / "local" / "m"
    fresh = stage(mirror, dest, opts(dry_run=True))
    assert fresh["changed"] is True and len(fresh["copied"]) == 6
    assert not dest.exists()
    stage(mirror, dest, opts())
    assert stage(mirror, dest, opts(dry_run=True))["changed"] is False
    os.truncate(dest / SHARD, 10)
    before = sorted(p.name for p in dest.iterdir())
    report = stage(mirror, dest, opts(dry_run=True))
    assert report["copied"] == [SHARD] and report["changed"] is True
    assert sorted(p.name for p in dest.iterdir()) == before
    assert (dest / SHARD).stat().st_size == 10
