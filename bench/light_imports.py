"""CPU seconds to import the light side (client, protocol, settings, the daemon's request side) in a fresh
interpreter, and which heavy libraries came with it. Prints numbers, asserts nothing; the test that holds the
light side light is tests/test_light_imports.py.

    python bench/light_imports.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys

IMPORTS = {
    "client + protocol": "vinpaint.host_bridge.client, vinpaint.protocol",
    "engine settings": "vinpaint.engine, vinpaint.host_bridge.job_settings",
    "daemon (request side)": "vinpaint.host_bridge.daemon",
    "engine, to train (for scale)": "vinpaint.engine.api",
}
HEAVY = ("torch", "cv2", "av")


def cost(modules: str) -> tuple[float, str]:
    """CPU seconds (user + system) of one fresh interpreter importing `modules`, and the heavy ones it loaded."""
    code = f"import sys\nimport {modules}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules) or '-')"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="imports per row; the least CPU time is printed")
    args = parser.parse_args()
    print("| import | CPU s (least of %d) | heavy libraries loaded |" % args.rounds)
    print("|---|---|---|")
    for label, modules in IMPORTS.items():
        runs = [cost(modules) for _ in range(max(args.rounds, 1))]
        print(f"| {label} | {min(r[0] for r in runs):.2f} | {runs[-1][1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
