"""The light side stays light: the client, the protocol, the settings and the daemon's request side import
without torch or OpenCV, so a script, the plugin's tools and `job.status` never pay for the engine."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "cv2")


@pytest.mark.parametrize("modules", [
    ("vinpaint.host_bridge.client", "vinpaint.protocol"),
    ("vinpaint", "vinpaint.errors", "vinpaint.files"),
    ("vinpaint.engine", "vinpaint.engine.config", "vinpaint.host_bridge.job_settings"),
    ("vinpaint.host_bridge.daemon", "vinpaint.host_bridge.handlers", "vinpaint.host_bridge.worker"),
])
def test_importing_the_light_side_loads_neither_torch_nor_opencv(modules):
    code = (f"import sys\nimport {', '.join(modules)}\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing {modules} loaded {out.stdout.strip()}"


def test_the_command_line_parses_and_starts_a_cpu_daemon_without_torch():
    """Every command's parser is built before any command runs, and `vinpaint serve --device cpu` is the daemon,
    whose request thread checks each job.open with the engine's `validate`: none of them pays the seconds torch
    takes to load (the training process loads it in its own interpreter), and a mistyped argument is answered at
    once."""
    code = ("import sys\nfrom vinpaint.cli.main import build_parser\nfrom vinpaint.engine.devices import check_device\n"
            "build_parser().parse_args(['serve', '--device', 'cpu'])\nassert check_device('cpu') == 'cpu'\n"
            "import numpy as np\nfrom vinpaint.engine import make_config, validate\n"
            "masks = np.zeros((12, 32, 64), bool)\nmasks[:, 4:9, 4:9] = True\n"
            "validate(np.zeros((12, 32, 64, 3), np.uint8), masks, make_config('tiny'))\n"
            "print(','.join(m for m in ('torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"the command line loaded {out.stdout.strip()}"


def test_the_engine_loads_torch_when_it_is_used():
    """The check above means something: the same interpreter does load torch once the engine trains."""
    code = "import sys\nfrom vinpaint.engine import inpaint\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_importing_vinpaint_leaves_the_openmp_policy_alone():
    """Only the entry points that start torch (the CLI, the training process) set OMP_WAIT_POLICY."""
    code = "import os\nimport vinpaint, vinpaint.engine\nprint(os.environ.get('OMP_WAIT_POLICY', '-'))"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "-"
