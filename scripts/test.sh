#!/usr/bin/env bash
# Every check CI runs: lint (ruff, mypy, yamllint, ansible-lint), pytest (unit, SGLang's own
# parser, integration on a podman lab) and Molecule scenarios with idempotence.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    lint + unit tests only
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${1:-}
if [ "$QUICK" = "--quick" ]; then scripts/setup.sh; else scripts/setup.sh --sglang; fi
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_HOME="$PWD/.cache/ansible"
step() { printf '\n=== %s ===\n' "$*"; }
step ruff;          ruff check .
                    ruff format --check .
step mypy;          mypy
step yamllint;      yamllint -s .
step ansible-lint;  ansible-lint --profile production
if [ "$QUICK" = "--quick" ]; then
  step pytest-unit; pytest -q tests/unit
  exit 0
fi
export SGLFLEET_SGLANG_PYTHON="$PWD/.cache/sglang-venv/bin/python"
step lab-image;     sglfleet lab image
step pytest;        pytest -q -rs tests
for scenario in molecule/*/; do
  name=$(basename "$scenario")
  step "molecule $name"; molecule test -s "$name"
done
step "all checks passed"
