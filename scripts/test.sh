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
# Molecule scenarios run beside pytest: both spend most of their time waiting on apt, pip and
# systemd inside containers, so together they take about as long as the longer of the two.
mkdir -p .cache/logs
(
  rc=0
  for scenario in molecule/*/; do
    name=$(basename "$scenario")
    printf '\n=== molecule %s ===\n' "$name"
    molecule test -s "$name" || rc=1
  done
  exit $rc
) > .cache/logs/molecule.log 2>&1 &
molecule_pid=$!
step pytest
pytest_rc=0
pytest -q -rs tests || pytest_rc=$?
step "molecule (log: .cache/logs/molecule.log)"
molecule_rc=0
wait "$molecule_pid" || molecule_rc=$?
cat .cache/logs/molecule.log
if [ "$pytest_rc" != 0 ] || [ "$molecule_rc" != 0 ]; then
  step "FAILED: pytest rc=$pytest_rc, molecule rc=$molecule_rc"
  exit 1
fi
step "all checks passed"
