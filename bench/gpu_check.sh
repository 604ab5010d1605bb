#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py) on a fresh GPU machine with torch, numpy, opencv and pytest but maybe not
# vinpaint installed, nor PyAV or pyzmq. Wheels in .whl/ (see /work/.library/device/README.md on carrying them)
# are installed into /tmp/site first; vinpaint itself is put on the path without installing it.
#   bash bench/gpu_check.sh                    # cuda, about 5 minutes
#   bash bench/gpu_check.sh --device cpu --quick
set -u
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! python3 -c "import vinpaint.engine" >/dev/null 2>&1; then
    # the package maps vinpaint -> common/, vinpaint.engine -> engine/, ...: the same layout with links, no pip
    shim=/tmp/vinpaint_shim
    rm -rf "$shim" && mkdir -p "$shim/vinpaint"
    for f in common/*; do ln -s "$PWD/$f" "$shim/vinpaint/$(basename "$f")"; done
    for d in cli media engine protocol host_bridge evaluation; do ln -s "$PWD/$d" "$shim/vinpaint/$d"; done
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
fi
exec python3 bench/gpu_check.py "$@"
