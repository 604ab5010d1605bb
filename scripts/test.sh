#!/usr/bin/env bash
# One command: set up, then run the whole test suite (Python parts, the C++ plugin build, ctest, the OFX host
# harness against a real daemon). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$PY" -m pytest -ra "$@"
