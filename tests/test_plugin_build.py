"""The OpenFX plugin's build: CMake configures and builds plugin_cpp/ from scratch, ctest runs the C++ tests (the
codec against protocol/golden, pixel conversion per bit depth, the transport's failure handling, the bundle's
exported symbols, the harness without a daemon), and `cmake --install` lays the bundle out where hosts look.

The end-to-end runs against the real daemon are in test_plugin_harness.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "plugin-tests"
BUNDLE = "Vinpaint.ofx.bundle"
ARCH = "Linux-x86-64"

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")


def build_plugin() -> Path:
    """Configure (once) and build the plugin, its ctests and the harness in build/plugin-tests; returns the dir.

    Incremental: a second call only relinks what changed. Two jobs, as the CI machine has two cores."""
    BUILD.mkdir(parents=True, exist_ok=True)
    if not (BUILD / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"],
                       check=True, capture_output=True, text=True)
    done = subprocess.run(["cmake", "--build", str(BUILD), "-j2"], capture_output=True, text=True)
    assert done.returncode == 0, f"plugin build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return BUILD


@pytest.fixture(scope="module")
def build_dir() -> Path:
    return build_plugin()


def test_bundle_layout(build_dir: Path) -> None:
    binary = build_dir / BUNDLE / "Contents" / ARCH / "Vinpaint.ofx"
    assert binary.is_file()
    assert os.access(binary, os.X_OK)


def test_ctest(build_dir: Path) -> None:
    """Codec golden vectors, pixels, transport, exports and the no-daemon harness run, all through ctest."""
    run = subprocess.run(["ctest", "--test-dir", str(build_dir), "--output-on-failure"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    for name in ("codec_golden_vectors", "pixel_conversion", "transport_timeouts", "bundle_exports",
                 "bundle_glibc", "harness_no_daemon"):
        assert name in run.stdout


def glibc_check(binary: Path, floor: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", f"-DBUNDLE={binary}", f"-DFLOOR={floor}", "-P",
                           str(ROOT / "plugin_cpp" / "tests" / "check_glibc.cmake")], capture_output=True, text=True)


def test_the_glibc_check_names_what_the_bundle_needs_and_refuses_it_above_the_floor(build_dir: Path) -> None:
    """The newest GLIBC_x.y among the bundle's version needs is what a machine must have to load it; the
    check says it, passes at that version and fails one step below it, naming both."""
    import re
    binary = build_dir / BUNDLE / "Contents" / ARCH / "Vinpaint.ofx"
    needs = subprocess.run(["readelf", "-V", str(binary)], capture_output=True, text=True, check=True).stdout
    versions = [tuple(int(p) for p in v.split(".")) for v in re.findall(r"Name: GLIBC_([0-9.]+)", needs)]
    newest = ".".join(str(p) for p in max(versions))
    at = glibc_check(binary, newest)
    assert at.returncode == 0 and f"the bundle needs glibc {newest} or newer" in at.stdout + at.stderr, at
    below = ".".join(str(p) for p in max(versions)[:-1] + (max(versions)[-1] - 1,))
    refused = glibc_check(binary, below)
    text = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0 and f"needs glibc {newest} or newer, above VINPAINT_GLIBC_FLOOR={below}" in text, text


def test_codec_test_fails_on_a_changed_vector(build_dir: Path, tmp_path: Path) -> None:
    """The golden test can fail for the right reason: one flipped byte in a copy of the vectors is caught."""
    golden = tmp_path / "golden"
    shutil.copytree(ROOT / "protocol" / "golden", golden)
    victim = golden / "job_status_reply_training.0.bin"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0x01  # inside the last float64 ('updated')
    victim.write_bytes(bytes(data))
    run = subprocess.run([str(build_dir / "plugin_cpp" / "vinpaint_test_codec"), str(golden)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "job_status_reply_training" in run.stderr


def test_install_puts_the_bundle_under_the_prefix(build_dir: Path, tmp_path: Path) -> None:
    run = subprocess.run(["cmake", "--install", str(build_dir), "--prefix", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    binary = tmp_path / "OFX" / "Plugins" / BUNDLE / "Contents" / ARCH / "Vinpaint.ofx"
    assert binary.is_file()
