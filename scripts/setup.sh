#!/usr/bin/env bash
# Install everything sglfleet and its tests need on Debian 12: system packages and a venv.
#   scripts/setup.sh            controller tools (.venv)
#   scripts/setup.sh --sglang   also the pinned SGLang on the CPU (.cache/sglang-venv, ~11 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
# systemd: systemd-analyze, which the unit-file tests run (the roles validate units with it);
# pipx: the install test installs sglfleet the way the README shows.
PKGS=(systemd pipx podman runc debootstrap uidmap slirp4netns openssh-client python3-venv python3-dev git rsync curl ca-certificates gnupg apt-utils dpkg-dev prometheus)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
if [ "${1:-}" = "--sglang" ]; then
  SGLANG_VERSION=$(sed -n 's/^SGLANG_VERSION = "\(.*\)"/\1/p' src/sglfleet_sglang/__init__.py)
  if [ ! -x .cache/sglang-venv/bin/python ] || ! .cache/sglang-venv/bin/python -c "import sglang" 2>/dev/null; then
    mkdir -p .cache
    "$PY" -m venv .cache/sglang-venv
    .cache/sglang-venv/bin/pip install -q --upgrade pip
    .cache/sglang-venv/bin/pip install -q "sglang==${SGLANG_VERSION}"
  fi
fi
# The real sglang-router (the version the sglang_router role pins, a small wheel) for the unit
# tests that drain and add workers through its API.
ROUTER_VERSION=$(sed -n 's/^sglang_router_version: "\(.*\)"/\1/p' roles/sglang_router/defaults/main.yml)
if [ ! -x .cache/router-venv/bin/python ] || ! .cache/router-venv/bin/python -c "import sglang_router" 2>/dev/null; then
  mkdir -p .cache
  "$PY" -m venv .cache/router-venv
  .cache/router-venv/bin/pip install -q "sglang-router==${ROUTER_VERSION}"
fi
echo "setup: ready (.venv$( [ "${1:-}" = "--sglang" ] && echo ', .cache/sglang-venv'))"
