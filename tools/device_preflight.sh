#!/usr/bin/env bash
# GPU-machine run kit: install sglfleet from carried wheels, then run through the CLI
#   sglfleet preflight -i INV --json            (and the table form)
#   sglfleet preflight -i INV --nccl --json     (and the table form)
#   python benchmarks/nccl_busbw.py --run       (only with 2 or more GPUs: the torch reference)
# and leave logs and JSON in OUT (8 files at most). Every step runs, whatever an earlier one
# returned; each step's exit code is in OUT/steps.tsv and OUT/summary.txt.
#
# On the GPU machine (repo root, no internet, root, Python 3.12, torch in /opt/torch/.venv):
#   bash tools/device_preflight.sh "$OUT"                  (the device call carries [".whl"])
# On the development machine (with PyPI), to (re)build the git-ignored wheelhouse .whl/:
#   bash tools/device_preflight.sh --build-wheelhouse
# Overrides (environment): KIT_PYTHON (interpreter for the venv, default /usr/bin/python3),
# KIT_WHEELS (default .whl), KIT_INVENTORY (default by GPU count: device-inventory/h200x1|h200x2),
# KIT_TORCH_SITE (torch's site-packages, default from /opt/torch/.venv).
set -u -o pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2

build_wheelhouse() {
  # The wheels are for CPython 3.12 on x86_64 glibc (Ubuntu 24.04); the collections come from the
  # `ansible` wheel (the runtime dependency) without their tests, packed to keep .whl small.
  local pip="${KIT_PIP:-$REPO/.venv/bin/pip}" dest="$REPO/.whl" tmp
  rm -rf "$dest" && mkdir -p "$dest/collections" || return 1
  "$pip" download -q -d "$dest" --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_34_x86_64 --platform any \
    "ansible-core>=2.19,<2.20" "ansible-runner>=2.4,<2.5" "pydantic>=2.7" "typer>=0.12" \
    "rich>=13.7" "httpx>=0.27" "jinja2>=3.1" "pyyaml>=6.0" "paramiko>=3.4" \
    pip "setuptools>=68" wheel || return 1
  tmp="$(mktemp -d)"
  "$pip" download -q --no-deps -d "$tmp" --only-binary=:all: --python-version 3.12 \
    "ansible>=12,<13" || return 1
  python3 - "$tmp" "$dest/collections" <<'EOF' || return 1
import glob, json, pathlib, sys, tarfile, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = sorted(glob.glob(str(tmp / "ansible-*.whl")))[-1]
wanted = ("ansible_collections/ansible/posix/", "ansible_collections/community/general/")
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(wanted) and "/tests/" not in n]
    z.extractall(tmp / "x", names)
with tarfile.open(dest / "ansible_collections.tar.gz", "w:gz") as tar:
    tar.add(tmp / "x" / "ansible_collections", arcname="ansible_collections")
lines = []
for c in ("ansible/posix", "community/general"):
    info = json.loads((tmp / "x" / "ansible_collections" / c / "MANIFEST.json").read_text())
    info = info["collection_info"]
    lines.append(f"{info['namespace']}.{info['name']} {info['version']}")
lines.append(f"from {pathlib.Path(wheel).name} (PyPI), tests/ removed")
(dest / "VERSIONS.txt").write_text("\n".join(lines) + "\n")
EOF
  rm -rf "$tmp"
  du -sh "$dest"
}

if [ "${1:-}" = "--build-wheelhouse" ]; then
  build_wheelhouse
  exit $?
fi

OUT="${1:-}"
if [ -z "$OUT" ]; then
  echo "Error: no output folder. Usage: bash tools/device_preflight.sh OUT" >&2
  exit 2
fi
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/kit.log"
STEPS="$OUT/steps.tsv"
WHEELS="${KIT_WHEELS:-$REPO/.whl}"
WORK="$(mktemp -d /tmp/sglfleet-kit.XXXXXX)"
VENV="$WORK/venv"
: >"$LOG"
printf 'step\trc\tseconds\n' >"$STEPS"

# step NAME TIMEOUT_S COMMAND...: log the command (set -x style) and its output, record its rc.
step() {
  local name="$1" limit="$2" start rc
  shift 2
  start=$(date +%s)
  {
    echo
    echo "=== $name ($(date -u +%H:%M:%S) UTC)"
    echo "+ $*"
  } >>"$LOG"
  # bash -c: the command may be one of the functions below (exported), which timeout cannot run.
  timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >>"$LOG" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$STEPS"
  echo "=== $name: rc=$rc" >>"$LOG"
  return "$rc"
}

# capture NAME TIMEOUT_S FILE COMMAND...: as step, but stdout goes to FILE (stderr to the log).
capture() {
  local name="$1" limit="$2" file="$3" start rc
  shift 3
  start=$(date +%s)
  {
    echo
    echo "=== $name ($(date -u +%H:%M:%S) UTC)"
    echo "+ $* > $file"
  } >>"$LOG"
  timeout --kill-after=10 "$limit" bash -c '"$@"' "$name" "$@" >"$file" 2>>"$LOG"
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$STEPS"
  echo "=== $name: rc=$rc" >>"$LOG"
  return "$rc"
}

machine_info() {
  date -u
  uname -a
  head -n 4 /etc/os-release
  echo "PID 1: $(cat /proc/1/comm 2>/dev/null)"
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  ls -l /usr/bin/python3* /opt/torch/.venv/bin/python* 2>&1
  /opt/torch/.venv/bin/python -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version())'
  cat /etc/nccl.conf 2>&1
  echo "wheels: $(find "$WHEELS" -name '*.whl' | wc -l) in $WHEELS"
  cat "$WHEELS/collections/VERSIONS.txt" 2>&1
  git -C "$REPO" log -1 --oneline 2>&1
  true
}

# The venv's interpreter: /usr/bin/python3 (3.12 on Ubuntu 24.04) unless told otherwise; Ubuntu
# ships no ensurepip without python3-venv, so pip comes from the carried wheel (--without-pip).
make_venv() {
  local python
  for python in "${KIT_PYTHON:-}" /usr/bin/python3 /opt/torch/.venv/bin/python; do
    [ -n "$python" ] && [ -x "$python" ] || continue
    echo "trying $python ($("$python" -V 2>&1))"
    rm -rf "$VENV"
    if "$python" -m venv --without-pip "$VENV"; then
      "$VENV/bin/python" -V
      return 0
    fi
  done
  echo "no interpreter could make a venv" >&2
  return 1
}

install_pip() {
  local wheel
  wheel="$(ls "$WHEELS"/pip-*.whl | head -n 1)"
  # pip runs from its own wheel to install itself (no ensurepip needed).
  "$VENV/bin/python" "$wheel/pip" install -q --no-index --find-links "$WHEELS" pip setuptools wheel
}

install_deps() {
  "$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" \
    "ansible-core>=2.19,<2.20" "ansible-runner>=2.4,<2.5" "jinja2>=3.1" "paramiko>=3.4" \
    "pyyaml>=6.0" "typer>=0.12" "rich>=13.7" "pydantic>=2.7" "httpx>=0.27"
}

# sglfleet itself from this tree; --no-deps because its `ansible` dependency (the collections) is
# carried unpacked instead of as a 50 MB wheel.
install_sglfleet() {
  # setuptools builds in-tree; a build/ left by an earlier call could hold deleted modules.
  rm -rf "$REPO/build"
  "$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" --no-deps \
    --no-build-isolation "$REPO" && "$VENV/bin/sglfleet" --help
}

install_collections() {
  mkdir -p "$WORK/collections" &&
    tar -xzf "$WHEELS/collections/ansible_collections.tar.gz" -C "$WORK/collections" &&
    "$VENV/bin/ansible-galaxy" collection list
}

# torch lives in /opt/torch/.venv; a venv made with --system-site-packages does not see it, a .pth
# file does. Only when both interpreters are the same minor version (compiled extensions).
link_torch() {
  local site torch_site ours theirs
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  torch_site="${KIT_TORCH_SITE:-$(/opt/torch/.venv/bin/python -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null)}"
  torch_site="${torch_site:-/opt/torch/.venv/lib/python3.12/site-packages}"
  ours="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  theirs="$(basename "$(dirname "$torch_site")")"
  if [ "python$ours" != "$theirs" ]; then
    echo "not linking $torch_site: venv is python$ours, torch's is $theirs"
    return 3
  fi
  echo "$torch_site" >"$site/zz_opt_torch.pth"
  "$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, torch.cuda.device_count(), "GPUs")'
}

pick_inventory() {
  local gpus
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')"
  if [ -n "${KIT_INVENTORY:-}" ]; then
    echo "$KIT_INVENTORY"
  elif [ "${gpus:-0}" -ge 2 ]; then
    echo "tests/fixtures/device-inventory/h200x2"
  else
    echo "tests/fixtures/device-inventory/h200x1"
  fi
}

summarize() {
  "${SUMMARY_PYTHON:-python3}" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
lines = []
steps = [l.split("\t") for l in (out / "steps.tsv").read_text().splitlines()[1:] if l]
lines.append("steps (rc, seconds): " + ", ".join(f"{n}={rc} ({s}s)" for n, rc, s in steps))
def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError) as error:
        lines.append(f"{name}: unreadable ({error})")
        return None
pf = load("preflight.json")
if pf:
    statuses = [c["status"] for n in pf.get("nodes", []) for c in n.get("checks", [])]
    lines.append(f"preflight: failed={pf.get('failed')} checks={len(statuses)} "
                 + " ".join(f"{s}={statuses.count(s)}" for s in sorted(set(statuses))))
nc = load("preflight-nccl.json")
peak = None
if nc:
    n = nc.get("nccl", {})
    lines.append(f"preflight --nccl: failed={nc.get('failed')} playbook failures={n.get('failures')}")
    for r in n.get("results", []):
        lines.append(f"  {r.get('file')}: ok={r.get('ok')} world={r.get('world_size')} "
                     f"peak busbw={r.get('peak_busbw_gbps')} GB/s line={r.get('line_rate_gbps')} "
                     f"checks=" + ", ".join(f"{c['check']}:{c['status']}" for c in r.get("checks", [])))
        for c in r.get("checks", []):
            if c["status"] != "ok":
                lines.append(f"    {c['check']} {c['status']}: {c['observed']} | fix: {c.get('fix')}")
        if r.get("scope") == "node" and r.get("peak_busbw_gbps"):
            peak = float(r["peak_busbw_gbps"])
ref_path = out / "nccl_busbw.json"
if ref_path.exists():
    ref = load("nccl_busbw.json")
    if ref:
        rows = (ref.get("runs", {}).get("reference") or {}).get("rows") or []
        big = [float(r["busbw_gbps"]) for r in rows if int(r["bytes"]) >= 64 << 20]
        best = max(big) if big else None
        lines.append(f"nccl_busbw.py: comparison={ref.get('comparison')}")
        if best and peak:
            ratio = peak / best
            lines.append(f"sglfleet preflight --nccl vs torch reference (same call): {peak:.1f} vs "
                         f"{best:.1f} GB/s, ratio {ratio:.3f} "
                         f"({'within' if abs(1 - ratio) <= 0.10 else 'NOT within'} 10%)")
elif any(n == "nccl_busbw" for n, _rc, _s in steps):
    lines.append("nccl_busbw.py: ran but wrote no JSON (its rc is in steps.tsv; output in kit.log)")
else:
    lines.append("nccl_busbw.py: not run (fewer than 2 GPUs: no all-reduce traffic to compare)")
text = "\n".join(lines) + "\n"
(out / "summary.txt").write_text(text)
print(text)
EOF
}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONUNBUFFERED=1
export SGLFLEET_PROJECT="$REPO" SGLFLEET_HOME="$WORK/home"
export ANSIBLE_HOME="$WORK/ansible-home" ANSIBLE_COLLECTIONS_PATH="$WORK/collections"
export ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp" ANSIBLE_NOCOLOR=1 NO_COLOR=1 COLUMNS=200
export PATH="$VENV/bin:$PATH"
export REPO OUT LOG WHEELS WORK VENV
export -f machine_info make_venv install_pip install_deps install_sglfleet install_collections \
  link_torch

step machine 60 machine_info
step venv 120 make_venv
step pip 180 install_pip
step deps 300 install_deps
step sglfleet 300 install_sglfleet
step collections 60 install_collections
step torch_pth 60 link_torch
INV="$(pick_inventory)"
echo "inventory: $INV" >>"$LOG"
capture preflight 180 "$OUT/preflight.json" sglfleet preflight -i "$INV" --json
step preflight_table 180 sglfleet preflight -i "$INV"
capture preflight_nccl 300 "$OUT/preflight-nccl.json" sglfleet preflight -i "$INV" --nccl --json
step preflight_nccl_table 300 sglfleet preflight -i "$INV" --nccl
if [ "$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')" -ge 2 ]; then
  # The venv sees torch through the .pth; if that step failed, torch's own interpreter runs it.
  BUSBW_PYTHON="$VENV/bin/python"
  "$BUSBW_PYTHON" -c 'import torch' 2>/dev/null || BUSBW_PYTHON=/opt/torch/.venv/bin/python
  step nccl_busbw 420 "$BUSBW_PYTHON" benchmarks/nccl_busbw.py --run \
    --compact-out "$OUT/nccl_busbw.json"
fi
# The Ansible run artifacts (event streams, stdout) of every CLI run above.
step artifacts 60 tar -czf "$OUT/runs.tar.gz" -C "$WORK/home" runs
SUMMARY_PYTHON="$VENV/bin/python"
[ -x "$SUMMARY_PYTHON" ] || SUMMARY_PYTHON=python3
summarize >>"$LOG" 2>&1
cat "$OUT/summary.txt" 2>/dev/null
echo "files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
