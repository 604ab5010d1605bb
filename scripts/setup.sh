#!/usr/bin/env bash
# Installs what vinpaint needs on a Debian machine, as root, and is safe to run again:
#   - the C++ build tools and libraries for the OpenFX plugin (apt),
#   - torch==2.13.0 first, so a CPU machine gets the CPU build rather than several GB of CUDA packages,
#   - vinpaint itself, editable, with its test extras and Ray (the long-shot tests run windows on a local Ray).
# Sourced by scripts/demo.sh and scripts/test.sh; sets $PY to the Python that has vinpaint installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PACKAGES=(cmake g++ make pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A Python whose pip may install packages: the machine's own, or a project venv where the system Python is
# managed by Debian (PEP 668).
PY="${PYTHON:-python3}"
if ! "$PY" -m pip --version >/dev/null 2>&1 || \
   "$PY" -c 'import sys, sysconfig, pathlib; sys.exit(0 if (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists() else 1)'; then
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    echo "setup: creating $ROOT/.venv"
    "$PY" -m venv "$ROOT/.venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null; "$PY" -m venv "$ROOT/.venv"; }
  fi
  PY="$ROOT/.venv/bin/python"
fi

pip_quiet() {  # pip's own failure still fails the script (pipefail); only grep's "nothing left" is ignored
  "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 |
    { grep -v -e "Running pip as the 'root' user" -e "^WARNING: Location '.*' is ignored" -e "^$" || true; }
}
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
  echo "setup: installing torch==2.13.0"
  pip_quiet torch==2.13.0
fi
# Installed, and from this checkout (an editable install of another clone would shadow this one).
if ! "$PY" -c 'import sys, pathlib, vinpaint.engine, vinpaint.protocol, pytest, hypothesis, ray
sys.exit(0 if pathlib.Path(vinpaint.__file__).resolve().parents[1] == pathlib.Path(sys.argv[1]).resolve() else 1)' \
     "$ROOT" 2>/dev/null || \
   [ "$ROOT/pyproject.toml" -nt "$ROOT/.setup-stamp" ]; then
  echo "setup: installing vinpaint (editable) and its dependencies"
  pip_quiet -e "$ROOT[test,ray]"
  touch "$ROOT/.setup-stamp"
fi
"$PY" -c 'import torch, vinpaint.engine' || { echo "setup: the installation failed (see above)" >&2; exit 1; }
export PY
