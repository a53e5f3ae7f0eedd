"""Command line: `sglfleet-stage {check,stage,verify,download} ...`; JSON on stdout for Ansible."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sglfleet_stage import __version__
from sglfleet_stage.core import MODES, RunOptions, StageError, check, default_jobs, stage
from sglfleet_stage.core import verify_in_place as verify_dir
from sglfleet_stage.manifest import ManifestError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="quick",
        help="quick: size+mtime against the marker; sample: also re-read the first, last and 2 "
        "random 16 MiB blocks per file; full: re-hash every byte (default: quick)",
    )
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="files in parallel")
    parser.add_argument(
        "--manifest", type=Path, help="manifest (default: SOURCE/.sglfleet-hub-tree.json)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglfleet-stage", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_check = sub.add_parser("check", help="exit 0 only if DIR holds verified, unchanged weights")
    p_check.add_argument("dir", type=Path)
    p_check.add_argument("--mode", choices=MODES, default="quick")

    p_stage = sub.add_parser("stage", help="parallel, resumable, verified copy SOURCE -> DEST")
    p_stage.add_argument("source", type=Path)
    p_stage.add_argument("dest", type=Path)
    _common(p_stage)
    p_stage.add_argument("--reserve-gb", type=float, default=1.0, help="free space to leave")
    p_stage.add_argument(
        "--space-variable",
        default="model_weights_local_dir",
        help="variable named in the out-of-space error",
    )
    p_stage.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="delete files the manifest lacks",
    )
    p_stage.add_argument("--seed", type=int, help="seed for sampled blocks (tests)")
    p_stage.add_argument(
        "--dry-run", action="store_true", help="report what would be copied; write nothing"
    )

    p_verify = sub.add_parser("verify", help="verify DIR in place against its manifest")
    p_verify.add_argument("dir", type=Path)
    _common(p_verify)

    p_dl = sub.add_parser("download", help="download a pinned revision from a hub into DEST")
    p_dl.add_argument("dest", type=Path)
    p_dl.add_argument("--hub", choices=("huggingface", "modelscope"), required=True)
    p_dl.add_argument("--repo-id", required=True)
    p_dl.add_argument("--revision", required=True)
    p_dl.add_argument(
        "--token-file",
        type=Path,
        help="0600 file with the token (else $HF_TOKEN / $MODELSCOPE_API_TOKEN)",
    )
    _common(p_dl)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check":
            problems = check(args.dir, args.mode)
            for problem in problems:
                print(f"sglfleet-stage: not verified: {problem}", file=sys.stderr)
            if not problems:
                print(f"sglfleet-stage: {args.dir}: verified ({args.mode})", file=sys.stderr)
            return 1 if problems else 0
        options = RunOptions(mode=args.mode, jobs=args.jobs, progress=not args.quiet)
        if args.command == "stage":
            options.reserve_bytes = int(args.reserve_gb * 1e9)
            options.space_variable = args.space_variable
            options.prune = args.prune
            options.seed = args.seed
            options.dry_run = args.dry_run
            result = stage(args.source, args.dest, options, args.manifest)
        elif args.command == "verify":
            result = verify_dir(args.dir, options, args.manifest)
        else:
            # lazy: the hub clients load only when a download needs them
            from sglfleet_stage.hub import download, read_token

            token = read_token(args.hub, args.token_file)
            result = download(args.hub, args.repo_id, args.revision, args.dest, options, token)
    except ManifestError as exc:
        print(f"sglfleet-stage: error: {exc}", file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"sglfleet-stage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, sort_keys=True))
    if args.command == "verify" and result["bad"]:
        for bad in result["bad"]:
            print(f"sglfleet-stage: bad: {bad['path']}: {bad['reason']}", file=sys.stderr)
        return 1
    return 0
