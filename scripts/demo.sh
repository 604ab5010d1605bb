#!/usr/bin/env bash
# One command: set up, generate the sample clip, remove its object with the fast preset on the CPU, show the result.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$PY" -m vinpaint demo -o "${1:-$ROOT/out/demo}"
