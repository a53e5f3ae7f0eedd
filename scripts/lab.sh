#!/usr/bin/env bash
# The main job on the embedded default: a 3-node lab in podman, converged by sglfleet, answering
# an OpenAI chat completion through the router. Re-running it converges again (changed=0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
sglfleet lab up --nodes "${LAB_NODES:-3}"
INVENTORY=$(sglfleet lab status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inventory"])')
sglfleet plan -i "$INVENTORY"
sglfleet up -i "$INVENTORY"
sglfleet status -i "$INVENTORY"
.venv/bin/python scripts/lab_chat.py "Say hello to the lab."
